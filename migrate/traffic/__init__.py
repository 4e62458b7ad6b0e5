"""Traffic shifting: routers (Route 53 weighted records, gateway integration switch), the probe, gates and the
cutover loop. Imports boto3 only through migrate.cloud; never imports run/ or steps/."""
