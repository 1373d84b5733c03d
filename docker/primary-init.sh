#!/bin/bash
# Runs once, when the primary's data directory is created: a replication role and the
# pg_hba line that lets the replicas stream from the compose network.
set -e
psql -v ON_ERROR_STOP=1 -U postgres <<SQL
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD 'replicator';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
