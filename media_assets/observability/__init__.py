"""What the running system tells its operators: the Prometheus exporter (`media-lake metrics serve`)."""
