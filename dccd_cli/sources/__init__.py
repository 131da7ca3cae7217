"""Where rows come from: every source yields ordered pieces of one series (REST paginators today)."""
