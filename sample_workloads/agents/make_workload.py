"""Write ``workload.jsonl``: a logged workload of the agents backend, as a qprof trace.

The script plays a fixed, seeded sequence of web requests against an in-memory
copy of ``agents.db`` (built first if missing), the way the application's ORM
would: list pages followed by one query per row (N+1), filters and sorts on
unindexed columns, OFFSET pagination, aggregates, and writes inside
``BEGIN``/``COMMIT``. Each statement is executed as it is logged, so every id
in the trace exists by the time the statement runs, including ids of rows the
workload inserted itself. Replaying the trace in order against a fresh copy of
the database therefore reproduces it exactly.

Usage::

    python sample_workloads/agents/make_workload.py [DB] [OUT]
"""

from __future__ import annotations

import datetime
import json
import pathlib
import random
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import apsw

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from build_db import DEFAULT_PATH, build_agents_db  # noqa: E402

DEFAULT_OUT = HERE / "workload.jsonl"
SEED = 20250701
REQUESTS = 230

# The simulated clock starts the day after the generated history ends.
CLOCK_START = datetime.datetime(2025, 7, 1, tzinfo=datetime.timezone.utc).timestamp()

Params = Sequence[Any] | Mapping[str, Any] | None
Row = tuple[Any, ...]


class App:
    """A simulated application: runs statements on the database and logs each one."""

    def __init__(self, connection: apsw.Connection, rng: random.Random) -> None:
        self.connection = connection
        self.rng = rng
        self.records: list[dict[str, Any]] = []
        self.context = ""
        self.clock = CLOCK_START
        self.busy_agents: list[int] = []

    def query(self, sql: str, params: Params = None) -> list[Row]:
        """Execute ``sql`` with ``params``, log it, and return all its rows."""
        frame = sys._getframe(1)
        record: dict[str, Any] = {"sql": sql}
        if params is not None:
            record["params"] = _to_json_params(params)
        record["context"] = self.context
        record["caller"] = (
            f"{pathlib.Path(frame.f_code.co_filename).name}:{frame.f_lineno}"
        )
        self.clock += self.rng.uniform(0.0004, 0.003)
        record["ts"] = round(self.clock, 6)
        self.records.append(record)
        return self.connection.execute(sql, params).fetchall()

    def peek(self, sql: str, params: Params = None) -> list[Row]:
        """Execute ``sql`` without logging it (the generator choosing ids)."""
        return self.connection.execute(sql, params).fetchall()

    def now(self) -> str:
        """Return the simulated time as the database stores timestamps."""
        moment = datetime.datetime.fromtimestamp(self.clock, datetime.timezone.utc)
        return moment.strftime("%Y-%m-%d %H:%M:%S")

    def start_request(self, label: str) -> None:
        """Begin a new request: label its statements and advance the clock."""
        self.context = label
        self.clock += self.rng.uniform(0.2, 4.0)


def make_workload(db_path: pathlib.Path, out_path: pathlib.Path) -> int:
    """Build the database if needed, play the requests, write the trace.

    Returns the number of statements written.
    """
    build_agents_db(db_path)
    source = apsw.Connection(str(db_path), flags=apsw.SQLITE_OPEN_READONLY)
    connection = apsw.Connection(":memory:")
    with connection.backup("main", source, "main") as backup:
        backup.step()
    source.close()

    rng = random.Random(SEED)
    app = App(connection, rng)
    handlers = [handler for handler, _weight in _REQUEST_MIX]
    weights = [weight for _handler, weight in _REQUEST_MIX]
    for handler in rng.choices(handlers, weights=weights, k=REQUESTS):
        handler(app)
    connection.close()

    with out_path.open("w", encoding="utf-8") as out:
        header = {"qprof_trace": 1, "created_by": "make_workload.py"}
        out.write(json.dumps(header) + "\n")
        for record in app.records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(app.records)


def _to_json_params(params: Sequence[Any] | Mapping[str, Any]) -> Any:
    """Return ``params`` as the trace stores them, blobs as ``{"$blob": hex}``."""
    if isinstance(params, Mapping):
        return {name: _to_json_value(value) for name, value in params.items()}
    return [_to_json_value(value) for value in params]


def _to_json_value(value: Any) -> Any:
    """Return one bound value as the trace stores it."""
    if isinstance(value, bytes):
        return {"$blob": value.hex()}
    return value


# Choosing who makes each request (not logged).


def _pick_tenant(app: App) -> int:
    """Return a tenant id, busy tenants more often (they have more users)."""
    (user_id,) = app.rng.choice(app.peek("SELECT id FROM users"))
    (tenant_id,) = app.peek("SELECT tenant_id FROM users WHERE id = ?", (user_id,))[0]
    return int(tenant_id)


def _pick_user(app: App, tenant_id: int) -> int:
    """Return a user of ``tenant_id``."""
    rows = app.peek(
        "SELECT id FROM users WHERE tenant_id = ? ORDER BY id", (tenant_id,)
    )
    return int(app.rng.choice(rows)[0])


def _pick_busy_agent(app: App) -> int:
    """Return one of the 60 agents with the most executions."""
    if not app.busy_agents:
        rows = app.peek(
            "SELECT agent_id FROM agent_executions GROUP BY agent_id "
            "ORDER BY COUNT(*) DESC, agent_id LIMIT 60"
        )
        app.busy_agents = [int(agent_id) for (agent_id,) in rows]
    return app.rng.choice(app.busy_agents)


def _authenticate(app: App, user_id: int) -> None:
    """Load the signed-in user, as every request of the app does first."""
    app.query(
        "SELECT id, tenant_id, email, display_name, role FROM users WHERE id = ?",
        [user_id],
    )


# The requests. Each handler plays one request of the application.


def _list_tenant_agents(app: App) -> None:
    """GET /tenants/T/agents: 25 agents, then per agent its last run and its owner."""
    tenant_id = _pick_tenant(app)
    app.start_request(f"GET /tenants/{tenant_id}/agents")
    _authenticate(app, _pick_user(app, tenant_id))
    app.query("SELECT COUNT(*) FROM ai_agents WHERE tenant_id = ?", [tenant_id])
    agents = app.query(
        "SELECT id, owner_user_id, name, status, model, created_at FROM ai_agents "
        "WHERE tenant_id = ? ORDER BY created_at DESC LIMIT 25",
        [tenant_id],
    )
    # Two lazy relationships per row, interleaved, as an ORM loads them.
    for agent_id, owner_user_id, *_ in agents:
        app.query(
            "SELECT id, status, started_at, finished_at, cost_credits FROM agent_executions "
            "WHERE agent_id = ? ORDER BY started_at DESC LIMIT 1",
            [agent_id],
        )
        app.query(
            "SELECT id, email, display_name FROM users WHERE id = ?", [owner_user_id]
        )


def _browse_agent_executions(app: App) -> None:
    """GET /agents/A/executions?page=P for P = 1, 2, ...: OFFSET pages, steps per row."""
    agent_id = _pick_busy_agent(app)
    (tenant_id,) = app.peek(
        "SELECT tenant_id FROM ai_agents WHERE id = ?", (agent_id,)
    )[0]
    user_id = _pick_user(app, tenant_id)
    for page in range(1, app.rng.randint(2, 9) + 1):
        app.start_request(f"GET /agents/{agent_id}/executions?page={page}")
        _authenticate(app, user_id)
        app.query(
            "SELECT id, tenant_id, name, status, model FROM ai_agents WHERE id = ?",
            [agent_id],
        )
        executions = app.query(
            "SELECT id, status, trigger_kind, started_at, finished_at, cost_credits "
            "FROM agent_executions WHERE agent_id = ? "
            "ORDER BY started_at DESC LIMIT 20 OFFSET ?",
            [agent_id, (page - 1) * 20],
        )
        for execution_id, *_ in executions:
            app.query(
                "SELECT step_no, kind, tokens, duration_ms FROM agent_execution_steps "
                "WHERE execution_id = ? ORDER BY step_no",
                [execution_id],
            )


def _show_agent(app: App) -> None:
    """GET /agents/A: the agent, its run counts by status, its peers one by one."""
    (agent_id,) = app.rng.choice(
        app.peek("SELECT peer_agent_id FROM agent_collaborations")
    )
    (tenant_id,) = app.peek(
        "SELECT tenant_id FROM ai_agents WHERE id = ?", (agent_id,)
    )[0]
    app.start_request(f"GET /agents/{agent_id}")
    _authenticate(app, _pick_user(app, tenant_id))
    app.query("SELECT * FROM ai_agents WHERE id = ?", [agent_id])
    app.query(
        "SELECT status, COUNT(*), SUM(cost_credits) FROM agent_executions "
        "WHERE agent_id = ? GROUP BY status ORDER BY status",
        [agent_id],
    )
    peers = app.query(
        "SELECT peer_agent_id, role FROM agent_collaborations WHERE agent_id = ?",
        [agent_id],
    )
    for peer_agent_id, _role in peers:
        app.query(
            "SELECT id, name, status, model FROM ai_agents WHERE id = ?",
            [peer_agent_id],
        )


def _list_failed_executions(app: App) -> None:
    """GET /admin/executions?status=S: filter and sort on unindexed columns, N+1 agents."""
    status = app.rng.choice(["failed", "failed", "running", "queued", "cancelled"])
    app.start_request(f"GET /admin/executions?status={status}")
    _authenticate(app, 1)
    executions = app.query(
        "SELECT id, agent_id, tenant_id, started_at, finished_at FROM agent_executions "
        "WHERE status = :status ORDER BY started_at DESC LIMIT :limit",
        {"status": status, "limit": 20},
    )
    for _id, agent_id, *_ in executions:
        app.query("SELECT id, name, model FROM ai_agents WHERE id = ?", [agent_id])


def _list_tenant_executions(app: App) -> None:
    """GET /tenants/T/executions: recent runs, then each run's agent and steps."""
    tenant_id = _pick_tenant(app)
    app.start_request(f"GET /tenants/{tenant_id}/executions")
    _authenticate(app, _pick_user(app, tenant_id))
    executions = app.query(
        "SELECT id, agent_id, status, started_at, cost_credits FROM agent_executions "
        "WHERE tenant_id = ? AND started_at >= ? ORDER BY started_at DESC LIMIT 20",
        [tenant_id, "2025-05-01 00:00:00"],
    )
    for execution_id, agent_id, *_ in executions:
        app.query("SELECT id, name, status FROM ai_agents WHERE id = ?", [agent_id])
        app.query(
            "SELECT id, step_no, kind, tokens FROM agent_execution_steps "
            "WHERE execution_id = ? ORDER BY step_no",
            [execution_id],
        )


def _show_tenant_dashboard(app: App) -> None:
    """GET /tenants/T/dashboard: aggregates over the tenant's runs and steps."""
    tenant_id = _pick_tenant(app)
    app.start_request(f"GET /tenants/{tenant_id}/dashboard")
    _authenticate(app, _pick_user(app, tenant_id))
    app.query(
        "SELECT status, COUNT(*), SUM(cost_credits) FROM agent_executions "
        "WHERE tenant_id = ? GROUP BY status",
        [tenant_id],
    )
    app.query(
        "SELECT a.model, COUNT(*) AS runs, AVG(e.cost_credits) FROM agent_executions e "
        "JOIN ai_agents a ON a.id = e.agent_id WHERE e.tenant_id = ? "
        "GROUP BY a.model ORDER BY runs DESC",
        [tenant_id],
    )
    app.query(
        "SELECT trigger_kind, COUNT(*) FROM agent_executions "
        "WHERE tenant_id = ? AND started_at >= ? GROUP BY trigger_kind",
        [tenant_id, "2025-06-01 00:00:00"],
    )


def _show_billing(app: App) -> None:
    """GET /tenants/T/billing?month=M: credit transactions of a month and the balance."""
    tenant_id = _pick_tenant(app)
    month = app.rng.randint(1, 6)
    since = f"2025-{month:02d}-01 00:00:00"
    until = f"2025-{month + 1:02d}-01 00:00:00"
    app.start_request(f"GET /tenants/{tenant_id}/billing?month=2025-{month:02d}")
    _authenticate(app, _pick_user(app, tenant_id))
    app.query(
        "SELECT id, user_id, amount, kind, reference, created_at "
        "FROM api_store_credit_transactions WHERE tenant_id = :tenant_id "
        "AND created_at >= :since AND created_at < :until ORDER BY created_at DESC",
        {"tenant_id": tenant_id, "since": since, "until": until},
    )
    app.query(
        "SELECT SUM(amount) FROM api_store_credit_transactions WHERE tenant_id = ?",
        [tenant_id],
    )
    app.query(
        "SELECT kind, COUNT(*), SUM(amount) FROM api_store_credit_transactions "
        "WHERE tenant_id = ? AND created_at >= ? GROUP BY kind ORDER BY kind",
        [tenant_id, since],
    )


def _browse_credit_ledger(app: App) -> None:
    """GET /admin/credits?page=P for P = 1, 2, ...: OFFSET pages of the whole ledger."""
    for page in range(1, app.rng.randint(2, 6) + 1):
        app.start_request(f"GET /admin/credits?page={page}")
        _authenticate(app, 1)
        app.query(
            "SELECT id, tenant_id, amount, kind, created_at FROM api_store_credit_transactions "
            "ORDER BY amount DESC LIMIT 50 OFFSET ?",
            [(page - 1) * 50],
        )


def _show_admin_overview(app: App) -> None:
    """GET /admin/tenants: per-tenant totals (literals inline, as hand-written SQL)."""
    app.start_request("GET /admin/tenants")
    _authenticate(app, 1)
    app.query(
        "SELECT t.id, t.name, t.plan, SUM(c.amount) AS balance FROM tenants t "
        "LEFT JOIN api_store_credit_transactions c ON c.tenant_id = t.id "
        "GROUP BY t.id ORDER BY balance DESC"
    )
    app.query(
        "SELECT tenant_id, -SUM(amount) AS spent FROM api_store_credit_transactions "
        "WHERE kind = 'usage' AND created_at >= '2025-06-01' "
        "GROUP BY tenant_id ORDER BY spent DESC LIMIT 10"
    )
    app.query(
        "SELECT region, COUNT(*) FROM node_ip_pool_entries WHERE status = 'free' GROUP BY region"
    )


def _list_user_sessions(app: App) -> None:
    """GET /users/U/sessions: recent sessions, then an event count per session (N+1)."""
    tenant_id = _pick_tenant(app)
    user_id = _pick_user(app, tenant_id)
    app.start_request(f"GET /users/{user_id}/sessions")
    _authenticate(app, user_id)
    sessions = app.query(
        "SELECT id, node_ip, started_at, ended_at, status FROM terminal_sessions "
        "WHERE user_id = ? ORDER BY started_at DESC LIMIT 10",
        [user_id],
    )
    for session_id, *_ in sessions:
        app.query(
            "SELECT COUNT(*) FROM terminal_replay_events WHERE session_id = ?",
            [session_id],
        )


def _replay_session(app: App) -> None:
    """GET /sessions/S/replay: one session and its events in order."""
    (session_id, user_id) = app.rng.choice(
        app.peek("SELECT id, user_id FROM terminal_sessions WHERE id % 97 = 0")
    )
    app.start_request(f"GET /sessions/{session_id}/replay")
    _authenticate(app, user_id)
    app.query(
        "SELECT id, user_id, tenant_id, node_ip, started_at, ended_at, status "
        "FROM terminal_sessions WHERE id = ?",
        [session_id],
    )
    app.query(
        "SELECT seq, event_kind, payload, ts FROM terminal_replay_events "
        "WHERE session_id = ? ORDER BY seq",
        [session_id],
    )


def _run_agent(app: App) -> None:
    """POST /agents/A/run: insert a run and its steps, finish it, charge credits."""
    agent_id = _pick_busy_agent(app)
    (tenant_id,) = app.peek(
        "SELECT tenant_id FROM ai_agents WHERE id = ?", (agent_id,)
    )[0]
    user_id = _pick_user(app, tenant_id)
    app.start_request(f"POST /agents/{agent_id}/run")
    _authenticate(app, user_id)
    # Older code paths of the app run in autocommit mode, without a transaction.
    in_transaction = app.rng.random() < 0.7
    if in_transaction:
        app.query("BEGIN")
    started_at = app.now()
    app.query(
        "INSERT INTO agent_executions (agent_id, tenant_id, status, started_at, "
        "trigger_kind) VALUES (?, ?, 'running', ?, ?)",
        [agent_id, tenant_id, started_at, app.rng.choice(["api", "manual", "webhook"])],
    )
    (execution_id,) = app.peek("SELECT last_insert_rowid()")[0]
    steps = app.rng.randint(2, 6)
    for step_no in range(1, steps + 1):
        kind = "plan" if step_no == 1 else "final" if step_no == steps else "llm_call"
        app.query(
            "INSERT INTO agent_execution_steps (execution_id, step_no, kind, tokens, "
            "duration_ms, created_at) VALUES (?, ?, ?, ?, ?, ?)",
            [
                execution_id,
                step_no,
                kind,
                app.rng.randint(20, 4000),
                app.rng.randint(5, 9000),
                app.now(),
            ],
        )
    cost = round(steps * app.rng.uniform(0.2, 1.5), 3)
    app.query(
        "UPDATE agent_executions SET status = ?, finished_at = ?, cost_credits = ? WHERE id = ?",
        ["succeeded", app.now(), cost, execution_id],
    )
    app.query(
        "INSERT INTO api_store_credit_transactions (tenant_id, user_id, amount, kind, "
        "reference, created_at) VALUES (?, ?, ?, 'usage', ?, ?)",
        [tenant_id, user_id, -cost, f"exec:{execution_id}", app.now()],
    )
    if in_transaction:
        app.query("COMMIT")


def _open_terminal(app: App) -> None:
    """POST /terminal/sessions: lease a node IP, open a session, record its first events."""
    tenant_id = _pick_tenant(app)
    user_id = _pick_user(app, tenant_id)
    region = app.rng.choice(["us-east-1", "eu-west-1", "ap-south-1"])
    app.start_request("POST /terminal/sessions")
    _authenticate(app, user_id)
    entry_id, ip = app.query(
        "SELECT id, ip FROM node_ip_pool_entries WHERE status = 'free' AND region = ? "
        "ORDER BY id LIMIT 1",
        [region],
    )[0]
    app.query("BEGIN")
    app.query(
        "INSERT INTO terminal_sessions (user_id, tenant_id, node_ip, started_at, status) "
        "VALUES (?, ?, ?, ?, 'active')",
        [user_id, tenant_id, ip, app.now()],
    )
    (session_id,) = app.peek("SELECT last_insert_rowid()")[0]
    app.query(
        "UPDATE node_ip_pool_entries SET status = 'leased', leased_to_session_id = ?, "
        "leased_at = ? WHERE id = ? AND status = 'free'",
        [session_id, app.now(), entry_id],
    )
    app.query("COMMIT")
    events: list[tuple[str, bytes]] = [
        ("resize", b"120x40"),
        ("stdout", b"\x1b[1;32magent@" + ip.encode() + b"\x1b[0m:~$ "),
        ("stdin", b"ls -la\r"),
    ]
    for seq, (event_kind, payload) in enumerate(events, start=1):
        app.query(
            "INSERT INTO terminal_replay_events (session_id, seq, event_kind, payload, ts) "
            "VALUES (?, ?, ?, ?, ?)",
            [session_id, seq, event_kind, payload, app.now()],
        )


def _close_terminal(app: App) -> None:
    """DELETE /terminal/sessions/S: end an active session and free its lease."""
    rows = app.peek(
        "SELECT id, user_id FROM terminal_sessions WHERE status = 'active' ORDER BY id"
    )
    session_id, user_id = app.rng.choice(rows)
    app.start_request(f"DELETE /terminal/sessions/{session_id}")
    _authenticate(app, user_id)
    app.query("BEGIN")
    app.query(
        "UPDATE terminal_sessions SET status = 'closed', ended_at = :ended_at "
        "WHERE id = :session_id",
        {"ended_at": app.now(), "session_id": session_id},
    )
    app.query(
        "UPDATE node_ip_pool_entries SET status = 'free', leased_to_session_id = NULL, "
        "leased_at = NULL WHERE leased_to_session_id = ?",
        [session_id],
    )
    app.query("COMMIT")


def _buy_credits(app: App) -> None:
    """POST /tenants/T/credits: a purchase, then the new balance."""
    tenant_id = _pick_tenant(app)
    user_id = _pick_user(app, tenant_id)
    app.start_request(f"POST /tenants/{tenant_id}/credits")
    _authenticate(app, user_id)
    invoice = f"inv_{app.rng.getrandbits(32):08x}"
    app.query(
        "INSERT INTO api_store_credit_transactions (tenant_id, user_id, amount, kind, "
        "reference, created_at) VALUES (?, ?, ?, 'purchase', ?, ?)",
        [tenant_id, user_id, 100.0 * app.rng.randint(1, 20), invoice, app.now()],
    )
    app.query(
        "SELECT SUM(amount) FROM api_store_credit_transactions WHERE tenant_id = ?",
        [tenant_id],
    )


# Each request with its relative frequency in the workload.
_REQUEST_MIX: list[tuple[Callable[[App], None], int]] = [
    (_list_tenant_agents, 14),
    (_browse_agent_executions, 8),
    (_show_agent, 12),
    (_list_failed_executions, 5),
    (_list_tenant_executions, 10),
    (_show_tenant_dashboard, 6),
    (_show_billing, 8),
    (_browse_credit_ledger, 2),
    (_show_admin_overview, 2),
    (_list_user_sessions, 3),
    (_replay_session, 10),
    (_run_agent, 12),
    (_open_terminal, 5),
    (_close_terminal, 3),
    (_buy_credits, 4),
]


def main(argv: list[str]) -> int:
    """Write the workload for argv[1] (database) to argv[2] (trace file)."""
    db_path = pathlib.Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH
    out_path = pathlib.Path(argv[2]) if len(argv) > 2 else DEFAULT_OUT
    count = make_workload(db_path, out_path)
    size_kb = out_path.stat().st_size / 1000
    print(f"{out_path}: {count} statements, {size_kb:.0f} kB", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
