"""The staff workspace: consultations, live priorities, what respondents wrote, the audit log."""
