"""Attribution scorers: each ranks training images per target and returns the top-k matrix."""
