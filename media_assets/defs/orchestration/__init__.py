"""What starts and watches runs: episode_job, the inbox sensor, the dead-run sensor."""
