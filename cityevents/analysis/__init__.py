"""Event analysis (从管到防): hot spots, recurring problems, duplicate reports, forecasts of
weekly volume and department performance over time. Imports nothing from api/."""
