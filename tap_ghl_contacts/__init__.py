"""Singer tap for GoHighLevel contacts and the tasks, notes and appointments on them."""
