"""Rows paged from an exchange's REST API: OHLC windows, trade cursors, page checks."""
