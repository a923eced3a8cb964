"""The indicator system (指标体系, issue #17): indicators as data over the platform's metrics
views, computed per period into a hypertable, with thresholds, lights and alarms. Imports
nothing from api/."""
