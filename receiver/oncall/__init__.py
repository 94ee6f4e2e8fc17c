"""On-call: people, teams, schedules (rotations, layers, overrides, calendars) and routing
of escalation steps to the people on duty. Configuration as code in rules/oncall/."""
