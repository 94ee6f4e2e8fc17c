"""The incident console at /ui/: sign in, see, act on and follow incidents in a browser.

views.py holds the pages and actions, session.py the session cookie and CSRF token,
present.py what a page shows of the store's rows; templates/ and static/ ship in the
package (no CDN, no build step).
"""
