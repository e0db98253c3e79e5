#!/bin/sh
# Runs lxcm-server in the foreground with its embedded SQLite store in
# ./data, ready to enroll a cluster. Usage: scripts/demo.sh [BUILD_DIR]
set -eu
BUILD=${1:-build}
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${LXCM_DATA_DIR:-$ROOT/data}
MGMT=${LXCM_MANAGEMENT_ADDR:-127.0.0.1:8443}
CONN=${LXCM_CONNECTOR_ADDR:-127.0.0.1:9443}

cat <<MSG
lxcm-server is starting with its data in $DATA
  management API: https://$MGMT     connector (clusters): $CONN
  admin API token: $DATA/admin.token (created on first start, mode 0600)

Next, in another terminal:
  export LXCM_SERVER=https://$MGMT LXCM_TOKEN_FILE=$DATA/admin.token
  $ROOT/$BUILD/lxcm token create my-cluster
and on the LXD host, run the 'lxcm-agent join ...' command it prints, then
  lxcm-agent run --data-dir /var/lib/lxcm-agent
  $ROOT/$BUILD/lxcm cluster list

Stop the server with Ctrl-C.
MSG
exec "$ROOT/$BUILD/lxcm-server" --data-dir "$DATA" --management-addr "$MGMT" --connector-addr "$CONN"
