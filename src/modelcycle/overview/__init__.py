"""What the dashboard shows, as plain JSON-ready dicts: the team overview of every model and one
model's versions side by side. The web pages and their `/v1/` JSON twins render the same dicts."""
