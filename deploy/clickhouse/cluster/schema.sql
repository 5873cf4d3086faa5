-- Shaobing ClickHouse schema (cluster shaobing). Generated from
-- collector/src/store/clickhouse/schema.rs: edit that file, not this one, then run
-- SHAOBING_WRITE_SCHEMA=1 cargo test -p shaobing-collector --lib schema_script
-- The collector creates all of this itself on start; this file is for review and for
-- creating the tables by hand:
--   clickhouse-client --multiquery < schema.sql   (on any one node)

CREATE DATABASE IF NOT EXISTS shaobing ON CLUSTER shaobing;

CREATE TABLE IF NOT EXISTS shaobing.schema_migrations ON CLUSTER shaobing (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/all/shaobing/schema_migrations', '{replica}') ORDER BY version;

-- Migration 1: initial tables

CREATE TABLE IF NOT EXISTS shaobing.events_local ON CLUSTER shaobing (
    event_id String,
    agent_id String,
    seq UInt64,
    time DateTime,
    time_ns Int64,
    date Date,
    hostname String,
    host_ips Array(String),
    host_os String,
    source String,
    kind String,
    raw String,
    pid UInt32,
    exe String,
    cmdline String,
    user String,
    login_action String,
    login_outcome String,
    target_user String,
    source_ip String,
    source_port UInt32,
    auth_method String,
    service String,
    tty String,
    command String,
    group_name String,
    file_op String,
    file_path String,
    file_old_path String,
    file_size UInt64,
    file_mode UInt32,
    file_uid UInt32,
    file_gid UInt32,
    file_owner String,
    file_mtime_ns Int64,
    file_hash_before String,
    file_hash_after String,
    file_watched_root String,
    file_content_sample String,
    net_action String,
    transport String,
    src_ip String,
    src_port UInt32,
    dst_ip String,
    dst_port UInt32,
    direction String,
    bytes UInt64,
    packets UInt64,
    duration_ms UInt64,
    dns_query String,
    dns_type String,
    dns_answers Array(String),
    dns_rcode String,
    check_id String,
    check_title String,
    check_status String,
    check_observed String,
    check_expected String,
    agent_version String,
    spool_depth UInt64,
    spool_bytes UInt64,
    dropped_total UInt64,
    cpu_percent Float64,
    rss_bytes UInt64,
    status_os String,
    counter_names Array(String),
    counter_values Array(UInt64),
    ppid UInt32,
    process_uid UInt32,
    cwd String,
    parent_exe String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/shaobing/events', '{replica}')
PARTITION BY toYYYYMMDD(date)
ORDER BY (hostname, time_ns)
SETTINGS index_granularity = 8192;

CREATE TABLE IF NOT EXISTS shaobing.events ON CLUSTER shaobing AS shaobing.events_local
ENGINE = Distributed(shaobing, shaobing, events_local, cityHash64(hostname));

CREATE TABLE IF NOT EXISTS shaobing.batches_local ON CLUSTER shaobing (
    agent_id String,
    seq UInt64,
    state UInt8,
    event_count UInt32,
    alert_count UInt32,
    written_ns Int64,
    written_date Date
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shaobing/batches', '{replica}', state)
PARTITION BY toYYYYMM(written_date)
ORDER BY (agent_id, seq);

CREATE TABLE IF NOT EXISTS shaobing.batches ON CLUSTER shaobing AS shaobing.batches_local
ENGINE = Distributed(shaobing, shaobing, batches_local, cityHash64(agent_id));

CREATE TABLE IF NOT EXISTS shaobing.alerts_local ON CLUSTER shaobing (
    alert_id String,
    rule_id String,
    rule_title String,
    level String,
    kind String,
    tags Array(String),
    mlps Array(String),
    agent_id String,
    hostname String,
    first_time_ns Int64,
    last_time_ns Int64,
    first_time DateTime,
    last_time DateTime,
    first_date Date,
    count UInt64,
    group_key String,
    event_ids Array(String),
    summary String,
    version UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shaobing/alerts', '{replica}', version)
PARTITION BY toYYYYMM(first_date)
ORDER BY alert_id;

CREATE TABLE IF NOT EXISTS shaobing.alerts ON CLUSTER shaobing AS shaobing.alerts_local
ENGINE = Distributed(shaobing, shaobing, alerts_local, cityHash64(alert_id));

CREATE TABLE IF NOT EXISTS shaobing.alert_triage_local ON CLUSTER shaobing (
    alert_id String,
    status String,
    assignee String,
    note String,
    updated_ns UInt64,
    updated DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shaobing/alert_triage', '{replica}', updated_ns)
ORDER BY alert_id;

CREATE TABLE IF NOT EXISTS shaobing.alert_triage ON CLUSTER shaobing AS shaobing.alert_triage_local
ENGINE = Distributed(shaobing, shaobing, alert_triage_local, cityHash64(alert_id));

CREATE TABLE IF NOT EXISTS shaobing.agents_local ON CLUSTER shaobing (
    agent_id String,
    hostname String,
    ips Array(String),
    os String,
    version String,
    first_seen_ns Int64,
    last_seen_ns Int64,
    status String,
    last_seen DateTime,
    row_version UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/shaobing/agents', '{replica}', row_version)
ORDER BY agent_id;

CREATE TABLE IF NOT EXISTS shaobing.agents ON CLUSTER shaobing AS shaobing.agents_local
ENGINE = Distributed(shaobing, shaobing, agents_local, cityHash64(agent_id));

CREATE TABLE IF NOT EXISTS shaobing.check_results_local ON CLUSTER shaobing (
    agent_id String,
    seq UInt64,
    hostname String,
    check_id String,
    title String,
    status String,
    observed String,
    expected String,
    time_ns Int64,
    time DateTime,
    date Date,
    event_id String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/shaobing/check_results', '{replica}')
PARTITION BY toYYYYMMDD(date)
ORDER BY (hostname, check_id, time_ns);

CREATE TABLE IF NOT EXISTS shaobing.check_results ON CLUSTER shaobing AS shaobing.check_results_local
ENGINE = Distributed(shaobing, shaobing, check_results_local, cityHash64(hostname));

CREATE TABLE IF NOT EXISTS shaobing.audit_log_local ON CLUSTER shaobing (
    time_ns Int64,
    time DateTime,
    date Date,
    actor String,
    action String,
    target String,
    detail String
) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/shaobing/audit_log', '{replica}')
PARTITION BY toYYYYMM(date)
ORDER BY time_ns;

CREATE TABLE IF NOT EXISTS shaobing.audit_log ON CLUSTER shaobing AS shaobing.audit_log_local
ENGINE = Distributed(shaobing, shaobing, audit_log_local, rand());
