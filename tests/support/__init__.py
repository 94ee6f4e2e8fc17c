"""Helpers shared by test modules (conftest.py files hold only fixtures).

Test modules import them as `support.…`: pyproject's pytest `pythonpath` puts tests/ on
sys.path, and unlike `from conftest import …` the name cannot resolve to another
folder's conftest.
"""
