#!/usr/bin/env bash
# A throw-away ClickHouse cluster on loopback: one ZooKeeper and two clickhouse-server
# processes forming cluster `shaobing` (one shard, two replicas). For trying the cluster
# layout and for collector/tests/store_cluster.rs; not for production (see README.md).
#
#   local-cluster.sh start DIR   # everything lives in DIR; prints the two HTTP URLs
#   local-cluster.sh stop DIR    # stops the processes started in DIR (by their pid files)
#
# Needs: clickhouse-server (Debian 12: 18.16) and Debian's `zookeeper` package (Java).
# Ports: SHAOBING_CLUSTER_PORT_BASE (default 28000) + 0..31.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

base=${SHAOBING_CLUSTER_PORT_BASE:-28000}
zk_port=$((base + 1))
zk_jar=${ZOOKEEPER_JAR:-/usr/share/java/zookeeper.jar}

node_port() { # node kind -> port
    local node=$1 kind=$2
    case $kind in
        http) echo $((base + 10 + node)) ;;
        tcp) echo $((base + 20 + node)) ;;
        interserver) echo $((base + 30 + node)) ;;
    esac
}

stop_pid() {
    local file=$1
    [[ -f "$file" ]] || return 0
    local pid
    pid=$(cat "$file")
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$file"
}

wait_for() { # what, command...
    local what=$1
    shift
    for _ in $(seq 1 600); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    echo "$what did not come up within 60 s; logs are in $dir" >&2
    return 1
}

zk_ok() {
    # `srvr` answers "Mode: standalone" only once ZooKeeper serves sessions (`ruok` answers
    # earlier; a ClickHouse 18.16 that loses its first ZooKeeper handshake can crash).
    python3 - "$zk_port" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"srvr")
reply = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    reply += chunk
sys.exit(0 if b"Mode: standalone" in reply else 1)
EOF
}

node_config() { # node -> config.xml
    local node=$1
    local root="$dir/node$node"
    cat <<EOF
<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>$root/log/server.log</log>
        <errorlog>$root/log/server.err.log</errorlog>
        <size>100M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$(node_port "$node" http)</http_port>
    <tcp_port>$(node_port "$node" tcp)</tcp_port>
    <interserver_http_port>$(node_port "$node" interserver)</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <max_connections>256</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>50</max_concurrent_queries>
    <mark_cache_size>268435456</mark_cache_size>
    <path>$root/data/</path>
    <tmp_path>$root/tmp/</tmp_path>
    <user_files_path>$root/user_files/</user_files_path>
    <format_schema_path>$root/format_schemas/</format_schema_path>
    <users_config>$root/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <remote_servers>
        <shaobing>
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$(node_port 1 tcp)</port></replica>
                <replica><host>127.0.0.1</host><port>$(node_port 2 tcp)</port></replica>
            </shard>
        </shaobing>
    </remote_servers>
    <zookeeper>
        <node>
            <host>127.0.0.1</host>
            <port>$zk_port</port>
        </node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <macros>
        <shard>01</shard>
        <replica>node$node</replica>
    </macros>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
</yandex>
EOF
}

users_config() {
    cat <<'EOF'
<?xml version="1.0"?>
<yandex>
    <profiles>
        <default>
            <max_memory_usage>2000000000</max_memory_usage>
            <load_balancing>in_order</load_balancing>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip><ip>::1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
EOF
}

start_node() {
    local root="$dir/node$1"
    clickhouse-server --config-file="$root/config.xml" >"$root/log/stdout.log" 2>&1 &
    echo $! >"$dir/node$1.pid"
}

node_healthy() { # node: up, ZooKeeper session works, no failed start in its log
    local node=$1
    local err="$dir/node$node/log/server.err.log"
    if grep -qs "connecting to ZooKeeper\|Segmentation fault" "$err"; then
        return 1
    fi
    curl -sf "http://127.0.0.1:$(node_port "$node" http)/" \
        --data-binary "SELECT count() FROM system.zookeeper WHERE path = '/'" >/dev/null
}

start() {
    command -v clickhouse-server >/dev/null || {
        echo "clickhouse-server is not installed (apt-get install clickhouse-server)" >&2
        exit 3
    }
    [[ -f "$zk_jar" ]] && command -v java >/dev/null || {
        echo "ZooKeeper is not installed ($zk_jar or java missing): apt-get install zookeeper" >&2
        exit 3
    }
    mkdir -p "$dir/zk/data"
    cat >"$dir/zk/zoo.cfg" <<EOF
tickTime=2000
dataDir=$dir/zk/data
clientPort=$zk_port
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr
EOF
    java -cp "/etc/zookeeper/conf:$zk_jar" org.apache.zookeeper.server.quorum.QuorumPeerMain \
        "$dir/zk/zoo.cfg" >"$dir/zk/zk.log" 2>&1 &
    echo $! >"$dir/zk.pid"
    wait_for "ZooKeeper" zk_ok
    for node in 1 2; do
        local root="$dir/node$node"
        mkdir -p "$root/log" "$root/data" "$root/tmp" "$root/user_files" "$root/format_schemas"
        users_config >"$root/users.xml"
        node_config "$node" >"$root/config.xml"
        start_node "$node"
    done
    for node in 1 2; do
        wait_for "clickhouse node $node" curl -sf "http://127.0.0.1:$(node_port "$node" http)/ping"
    done
    # 18.16 connects its DDL worker to ZooKeeper at start; if that first handshake fails it
    # crashes on the first ON CLUSTER query. Check each node's ZooKeeper session and restart a
    # node whose start went wrong (seen now and then on a loaded machine).
    for node in 1 2; do
        for attempt in 1 2 3; do
            sleep 1
            if node_healthy "$node"; then
                break
            fi
            echo "clickhouse node $node: bad start (attempt $attempt), restarting" >&2
            stop_pid "$dir/node$node.pid"
            mv "$dir/node$node/log/server.err.log" "$dir/node$node/log/server.err.log.$attempt" 2>/dev/null || true
            start_node "$node"
            wait_for "clickhouse node $node" curl -sf "http://127.0.0.1:$(node_port "$node" http)/ping"
        done
        node_healthy "$node" || {
            echo "clickhouse node $node cannot use ZooKeeper; logs are in $dir" >&2
            return 1
        }
    done
    echo "http://127.0.0.1:$(node_port 1 http)"
    echo "http://127.0.0.1:$(node_port 2 http)"
}

stop() {
    stop_pid "$dir/node1.pid"
    stop_pid "$dir/node2.pid"
    stop_pid "$dir/zk.pid"
}

case $cmd in
    start) start ;;
    stop) stop ;;
    *)
        echo "usage: $0 start|stop DIR" >&2
        exit 2
        ;;
esac
