"""Office-hours schedules: the scenario due by the week's periods, switched at boundaries."""
