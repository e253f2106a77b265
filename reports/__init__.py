"""Report queries: plain functions over billing lines, projections and readings."""
