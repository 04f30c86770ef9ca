"""Build the sample database of a multi-tenant AI agent, terminal and credits backend.

The rows are generated in SQL with ``WITH RECURSIVE`` and a multiplicative hash of
each row number, so the database is the same on every run and builds in seconds.
Some child columns are deliberately left without an index (for example
``agent_executions.agent_id``) so that the sample workload has real problems to
find. ``ANALYZE`` is deliberately not run.

Usage::

    python sample_workloads/agents/build_db.py [PATH]

PATH defaults to ``sample_workloads/agents/agents.db`` beside this script. A
complete database already at PATH is left alone.
"""

from __future__ import annotations

import os
import pathlib
import sys
import time

import apsw

# Bump when the schema or the generated data change, so old builds are replaced.
SCHEMA_VERSION = 1

DEFAULT_PATH = pathlib.Path(__file__).resolve().parent / "agents.db"

TENANTS = 20
USERS = 2_000
AGENTS = 1_000
COLLABORATIONS = 3_000
EXECUTIONS = 60_000
TERMINAL_SESSIONS = 40_000
CREDIT_TRANSACTIONS = 80_000
IP_POOL_ENTRIES = 5_000

# Every timestamp of the generated history falls in the 18 months from this day.
EPOCH = "2024-01-01 00:00:00"
HISTORY_SECONDS = 547 * 86_400

SCHEMA = """
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    plan TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE ai_agents (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    owner_user_id INTEGER NOT NULL REFERENCES users(id),
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE agent_executions (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL,
    tenant_id INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    cost_credits REAL NOT NULL DEFAULT 0,
    trigger_kind TEXT NOT NULL
);
CREATE TABLE agent_execution_steps (
    id INTEGER PRIMARY KEY,
    execution_id INTEGER NOT NULL REFERENCES agent_executions(id),
    step_no INTEGER NOT NULL,
    kind TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE agent_collaborations (
    id INTEGER PRIMARY KEY,
    agent_id INTEGER NOT NULL REFERENCES ai_agents(id),
    peer_agent_id INTEGER NOT NULL,
    role TEXT NOT NULL
);
CREATE TABLE terminal_sessions (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL,
    tenant_id INTEGER NOT NULL REFERENCES tenants(id),
    node_ip TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    status TEXT NOT NULL
);
CREATE TABLE terminal_replay_events (
    id INTEGER PRIMARY KEY,
    session_id INTEGER NOT NULL REFERENCES terminal_sessions(id),
    seq INTEGER NOT NULL,
    event_kind TEXT NOT NULL,
    payload BLOB,
    ts TEXT NOT NULL
);
CREATE TABLE api_store_credit_transactions (
    id INTEGER PRIMARY KEY,
    tenant_id INTEGER NOT NULL,
    user_id INTEGER REFERENCES users(id),
    amount REAL NOT NULL,
    kind TEXT NOT NULL,
    reference TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE node_ip_pool_entries (
    id INTEGER PRIMARY KEY,
    ip TEXT NOT NULL UNIQUE,
    region TEXT NOT NULL,
    status TEXT NOT NULL,
    leased_to_session_id INTEGER REFERENCES terminal_sessions(id),
    leased_at TEXT
);
"""

# Only a few secondary indexes, created after the rows are in (faster).
INDEXES = """
CREATE INDEX users_tenant_id ON users(tenant_id);
CREATE INDEX ai_agents_tenant_id ON ai_agents(tenant_id);
CREATE INDEX agent_execution_steps_execution_id ON agent_execution_steps(execution_id);
CREATE INDEX terminal_sessions_tenant_id ON terminal_sessions(tenant_id);
"""

# Odd multipliers below 2**31 - 1, one per use, so hashes of one row don't correlate.
_MULTIPLIERS = (
    48271,
    69621,
    16807,
    39373,
    40692,
    40014,
    1103515245,
    1664525,
    22695477,
    134775813,
    214013,
    65539,
    950706376,
    742938285,
    1226874159,
    62089911,
    1343714438,
    2027812193,
    1583458089,
    784588716,
    397204094,
    1407677000,
    630360061,
    1815106743,
)
_MODULUS = 2_147_483_647


def build_agents_db(path: pathlib.Path) -> None:
    """Create the agents sample database at ``path`` unless a complete one is there.

    The database is written to a temporary file beside ``path`` and renamed into
    place, so an interrupted build never leaves a partial database at ``path``.
    """
    if is_complete(path):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_path = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        connection = apsw.Connection(str(tmp_path))
        try:
            _populate(connection)
        finally:
            connection.close()
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def is_complete(path: pathlib.Path) -> bool:
    """Return True if ``path`` holds a finished build of the current schema version."""
    if not path.is_file():
        return False
    try:
        connection = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            row = connection.execute("PRAGMA user_version").fetchone()
        finally:
            connection.close()
    except apsw.Error:
        return False
    return row is not None and row[0] == SCHEMA_VERSION


def _populate(connection: apsw.Connection) -> None:
    """Create the schema, insert every table's rows, index, and mark the build done."""
    # The file is a scratch file until renamed, so durability is not needed here.
    connection.execute("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")
    with connection:
        connection.execute(SCHEMA)
        for statement in _insert_statements():
            connection.execute(statement)
        connection.execute(INDEXES)
        connection.execute("DROP TABLE temp.tenant_users")
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _h(expr: str, k: int) -> str:
    """Return SQL for a deterministic hash of ``expr`` in [0, 2**31 - 1).

    A multiply-add alone maps consecutive rows to evenly spaced values, so the
    value is squared (modulo the prime) in between to break that pattern; every
    intermediate stays below 2**62, inside SQLite's 64-bit integers.
    """
    m = _MULTIPLIERS[k]
    y = f"((({expr}) * {m} + {k * 7919 + 13}) % {_MODULUS})"
    return f"(({y} * {y} % {_MODULUS}) * {_MULTIPLIERS[-1 - k]} % {_MODULUS})"


def _u(expr: str, k: int) -> str:
    """Return SQL for a deterministic uniform number in [0, 1) from ``expr``."""
    return f"({_h(expr, k)} / {float(_MODULUS)})"


def _pick(expr: str, k: int, choices: list[tuple[str, int]]) -> str:
    """Return a SQL CASE picking one of ``choices`` (value, weight %) by hash."""
    bucket = f"({_h(expr, k)} % 100)"
    arms = []
    cumulative = 0
    for value, weight in choices[:-1]:
        cumulative += weight
        arms.append(f"WHEN {bucket} < {cumulative} THEN '{value}'")
    return f"(CASE {' '.join(arms)} ELSE '{choices[-1][0]}' END)"


def _at(offset_seconds: str) -> str:
    """Return SQL for the timestamp ``offset_seconds`` after the history's start."""
    return (
        f"datetime('{EPOCH}', '+' || CAST({offset_seconds} AS INTEGER) || ' seconds')"
    )


def _series(name: str, count: int) -> str:
    """Return a ``WITH RECURSIVE`` clause numbering ``name``(n) from 1 to ``count``."""
    return (
        f"WITH RECURSIVE {name}(n) AS "
        f"(SELECT 1 UNION ALL SELECT n + 1 FROM {name} WHERE n < {count}) "
    )


def _skewed_tenant(expr: str, k: int) -> str:
    """Return SQL for a tenant id where low ids are much busier (quadratic skew)."""
    u = _u(expr, k)
    return f"(1 + CAST({TENANTS} * {u} * {u} AS INTEGER))"


def _user_of_tenant(tenant_expr: str, expr: str, k: int) -> str:
    """Return SQL for a user of the tenant ``tenant_expr``, chosen by hash of ``expr``."""
    return (
        "(SELECT user_id FROM temp.tenant_users tu "
        f"WHERE tu.tenant_id = {tenant_expr} AND tu.rn = 1 + {_h(expr, k)} % "
        f"(SELECT COUNT(*) FROM temp.tenant_users c WHERE c.tenant_id = {tenant_expr}))"
    )


def _insert_statements() -> list[str]:
    """Return the statements that fill each table, parents first."""
    tenants = (
        _series("s", TENANTS) + "INSERT INTO tenants (id, name, plan, created_at) "
        "SELECT n, 'Tenant ' || n || ' ' || "
        "(CASE n % 5 WHEN 0 THEN 'Labs' WHEN 1 THEN 'Inc' WHEN 2 THEN 'GmbH' "
        "WHEN 3 THEN 'Cloud' ELSE 'Systems' END), "
        f"{_pick('n', 0, [('free', 30), ('pro', 50), ('enterprise', 20)])}, "
        f"{_at('n * 86400')} FROM s"
    )
    # Users 1..TENANTS are each tenant's first admin, so every tenant has a user.
    user_tenant = f"(CASE WHEN n <= {TENANTS} THEN n ELSE {_skewed_tenant('n', 1)} END)"
    user_created = _at(f"{_u('n', 3)} * {HISTORY_SECONDS // 2}")
    users = (
        _series("s", USERS)
        + "INSERT INTO users (id, tenant_id, email, display_name, role, created_at) "
        f"SELECT n, {user_tenant}, 'user' || n || '@example.com', 'User ' || n, "
        f"CASE WHEN n <= {TENANTS} THEN 'admin' ELSE "
        f"{_pick('n', 2, [('member', 80), ('admin', 10), ('viewer', 10)])} END, "
        f"{user_created} FROM s"
    )
    tenant_users = (
        "CREATE TEMP TABLE tenant_users AS SELECT tenant_id, id AS user_id, "
        "ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY id) AS rn FROM users; "
        "CREATE INDEX temp.tenant_users_key ON tenant_users(tenant_id, rn)"
    )
    agent_tenant = (
        f"(CASE WHEN n <= {TENANTS} THEN n ELSE {_skewed_tenant('n', 4)} END)"
    )
    models = [
        ("gpt-4o", 30),
        ("claude-3-5-sonnet", 30),
        ("gpt-4o-mini", 20),
        ("llama-3-70b", 12),
        ("mistral-large", 8),
    ]
    agent_created = _at(f"{_u('n', 8)} * {HISTORY_SECONDS // 3}")
    # Agents 1..TENANTS likewise give every tenant at least one agent.
    agents = (
        _series("s", AGENTS)
        + "INSERT INTO ai_agents (id, tenant_id, owner_user_id, name, status, model, "
        f"created_at) SELECT n, t, {_user_of_tenant('a.t', 'n', 5)}, "
        "(CASE n % 6 WHEN 0 THEN 'triage' WHEN 1 THEN 'coder' WHEN 2 THEN 'researcher' "
        "WHEN 3 THEN 'support' WHEN 4 THEN 'ops' ELSE 'writer' END) || '-' || n, "
        f"{_pick('n', 6, [('active', 70), ('paused', 15), ('draft', 8), ('archived', 7)])}, "
        f"{_pick('n', 7, models)}, {agent_created} "
        f"FROM (SELECT n, {agent_tenant} AS t FROM s) a"
    )
    collaborations = (
        _series("s", COLLABORATIONS)
        + "INSERT INTO agent_collaborations (id, agent_id, peer_agent_id, role) "
        f"SELECT n, 1 + {_h('n', 9)} % {AGENTS}, 1 + {_h('n', 10)} % {AGENTS}, "
        f"{_pick('n', 11, [('delegate', 50), ('reviewer', 30), ('supervisor', 20)])} "
        "FROM s"
    )
    return [
        tenants,
        users,
        tenant_users,
        agents,
        collaborations,
        _executions(),
        _execution_steps(),
        _ip_pool_entries(),
        _terminal_sessions(),
        _replay_events(),
        _credit_transactions(),
    ]


def _executions() -> str:
    """Return the INSERT of agent executions, most of them by a few busy agents."""
    u = _u("n", 0)
    start = f"({_u('n', 1)} * {HISTORY_SECONDS})"
    status = _pick(
        "n",
        2,
        [
            ("succeeded", 84),
            ("failed", 8),
            ("cancelled", 3),
            ("queued", 3),
            ("running", 2),
        ],
    )
    trigger = _pick(
        "n",
        3,
        [("schedule", 40), ("api", 25), ("manual", 15), ("webhook", 12), ("peer", 8)],
    )
    # Ids are left to SQLite, in start order, so that they follow time as in a live
    # table; the same holds for terminal sessions and credit transactions.
    return (
        _series("s", EXECUTIONS) + "INSERT INTO agent_executions (agent_id, "
        "tenant_id, status, started_at, finished_at, cost_credits, trigger_kind) "
        "SELECT agent_id, (SELECT tenant_id FROM ai_agents WHERE id = agent_id), "
        "status, started_at, CASE WHEN status IN ('queued', 'running') THEN NULL "
        "ELSE datetime(started_at, '+' || duration_s || ' seconds') END, "
        "round(duration_s * 0.013 + 0.05, 3), trigger_kind FROM ("
        f"SELECT n, 1 + CAST({AGENTS} * {u} * {u} AS INTEGER) AS agent_id, "
        f"{status} AS status, {_at(start)} AS started_at, "
        f"2 + {_h('n', 4)} % 600 AS duration_s, {trigger} AS trigger_kind FROM s) "
        "ORDER BY started_at, n"
    )


def _execution_steps() -> str:
    """Return the INSERT of 1 to 9 steps per execution (about 300,000 in all)."""
    key = "e.id * 16 + k.n"
    middle = _pick(key, 5, [("llm_call", 45), ("tool_call", 40), ("observation", 15)])
    kind = f"(CASE WHEN k.n = 1 THEN 'plan' WHEN k.n = e.steps THEN 'final' ELSE {middle} END)"
    return (
        _series("k", 9) + "INSERT INTO agent_execution_steps "
        "(execution_id, step_no, kind, tokens, duration_ms, created_at) "
        f"SELECT e.id, k.n, {kind}, 20 + {_h(key, 6)} % 4000, "
        f"5 + {_h(key, 7)} % 9000, "
        "datetime(e.started_at, '+' || (k.n * 7) || ' seconds') "
        f"FROM (SELECT id, started_at, 1 + {_h('id', 8)} % 9 AS steps "
        "FROM agent_executions) e JOIN k ON k.n <= e.steps ORDER BY e.id, k.n"
    )


def _ip_pool_entries() -> str:
    """Return the INSERT of the node IP pool; about a quarter of entries are leased."""
    ip = "'10.' || ((n - 1) / 62500) || '.' || ((n - 1) / 250 % 250) || '.' || ((n - 1) % 250 + 1)"
    region = _pick("n", 9, [("us-east-1", 40), ("eu-west-1", 30), ("ap-south-1", 30)])
    status = _pick("n", 10, [("free", 70), ("leased", 25), ("quarantined", 5)])
    leased_at = _at(f"{HISTORY_SECONDS} - {_h('n', 0)} % 86400")
    return (
        _series("s", IP_POOL_ENTRIES) + "INSERT INTO node_ip_pool_entries "
        "(id, ip, region, status, leased_to_session_id, leased_at) "
        "SELECT n, ip, region, status, "
        f"CASE status WHEN 'leased' THEN 1 + {_h('n', 11)} % {TERMINAL_SESSIONS} END, "
        f"CASE status WHEN 'leased' THEN {leased_at}"
        f" END FROM (SELECT n, {ip} AS ip, {region} AS region, {status} AS status FROM s)"
    )


def _terminal_sessions() -> str:
    """Return the INSERT of terminal sessions, most of them by a few heavy users."""
    u = _u("n", 1)
    start = f"({_u('n', 2)} * {HISTORY_SECONDS})"
    status = _pick(
        "n", 3, [("closed", 80), ("expired", 12), ("error", 5), ("active", 3)]
    )
    return (
        _series("s", TERMINAL_SESSIONS) + "INSERT INTO terminal_sessions "
        "(user_id, tenant_id, node_ip, started_at, ended_at, status) "
        "SELECT user_id, (SELECT tenant_id FROM users WHERE id = user_id), "
        f"(SELECT ip FROM node_ip_pool_entries WHERE id = 1 + {_h('n', 4)} % "
        f"{IP_POOL_ENTRIES}), started_at, CASE WHEN status = 'active' THEN NULL ELSE "
        f"datetime(started_at, '+' || (30 + {_h('n', 5)} % 7200) || ' seconds') END, "
        f"status FROM (SELECT n, 1 + CAST({USERS} * {u} * {u} AS INTEGER) AS user_id, "
        f"{_at(start)} AS started_at, {status} AS status FROM s) "
        "ORDER BY started_at, n"
    )


def _replay_events() -> str:
    """Return the INSERT of 1 to 9 replay events per session (about 200,000 in all)."""
    key = "t.id * 16 + k.n"
    payload = (
        f"CAST((CASE {_h(key, 6)} % 6 WHEN 0 THEN 'ls -la' WHEN 1 THEN 'git status' "
        "WHEN 2 THEN 'total 48' || char(10) || 'drwxr-xr-x  5 agent agent 4096 .' "
        "WHEN 3 THEN 'pytest -q' WHEN 4 THEN '12 passed in 0.84s' "
        "ELSE 'cat README.md' END) AS BLOB)"
    )
    kind = (
        "(CASE WHEN k.n = t.events THEN 'exit' WHEN k.n = 1 THEN 'resize' "
        f"WHEN {_h(key, 7)} % 2 = 0 THEN 'stdin' ELSE 'stdout' END)"
    )
    return (
        _series("k", 9) + "INSERT INTO terminal_replay_events "
        "(session_id, seq, event_kind, payload, ts) "
        f"SELECT t.id, k.n, {kind}, CASE WHEN k.n = 1 THEN CAST('120x40' AS BLOB) "
        f"WHEN k.n = t.events THEN NULL ELSE {payload} END, "
        "datetime(t.started_at, '+' || (k.n * 3) || ' seconds') "
        f"FROM (SELECT id, started_at, 1 + {_h('id', 8)} % 9 AS events "
        "FROM terminal_sessions) t JOIN k ON k.n <= t.events ORDER BY t.id, k.n"
    )


def _credit_transactions() -> str:
    """Return the INSERT of credit transactions: purchases, grants and usage."""
    kind = _pick(
        "n",
        9,
        [
            ("usage", 78),
            ("purchase", 12),
            ("grant", 5),
            ("refund", 3),
            ("adjustment", 2),
        ],
    )
    amount = (
        "CASE kind WHEN 'usage' THEN -round(0.05 + "
        f"{_h('n', 10)} % 800 / 100.0, 2) "
        f"WHEN 'purchase' THEN 100.0 * (1 + {_h('n', 10)} % 50) "
        "WHEN 'grant' THEN 500.0 "
        f"WHEN 'refund' THEN round(1 + {_h('n', 10)} % 5000 / 100.0, 2) "
        f"ELSE round(({_h('n', 10)} % 2001 - 1000) / 100.0, 2) END"
    )
    reference = (
        f"CASE kind WHEN 'usage' THEN 'exec:' || (1 + {_h('n', 11)} % {EXECUTIONS}) "
        "WHEN 'purchase' THEN 'inv_' || printf('%08x', "
        f"{_h('n', 11)}) ELSE NULL END"
    )
    created_at = _at(f"{_u('n', 2)} * {HISTORY_SECONDS}")
    # Ids are left to SQLite so that they follow created_at, as in a live table.
    return (
        _series("s", CREDIT_TRANSACTIONS) + "INSERT INTO api_store_credit_transactions "
        "(tenant_id, user_id, amount, kind, reference, created_at) "
        f"SELECT t, {_user_of_tenant('q.t', 'n', 0)}, {amount}, kind, {reference}, "
        f"created_at FROM (SELECT n, {_skewed_tenant('n', 1)} AS t, {kind} AS kind, "
        f"{created_at} AS created_at FROM s) q ORDER BY created_at, n"
    )


def main(argv: list[str]) -> int:
    """Build the database at argv[1] (or the default path) and report on stderr."""
    path = pathlib.Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH
    if is_complete(path):
        print(f"{path}: already built (user_version {SCHEMA_VERSION})", file=sys.stderr)
        return 0
    started = time.perf_counter()
    build_agents_db(path)
    elapsed_s = time.perf_counter() - started
    size_mb = path.stat().st_size / 1e6
    print(f"{path}: built in {elapsed_s:.1f} s, {size_mb:.1f} MB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
