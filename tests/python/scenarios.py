"""Runner of the shared scenarios (tests/scenarios/*.json; format in
tests/scenarios/README.md) for the Python binding: each step is one call of the
public API, its outcome converted to the snake_case JSON shape of the README
and compared with the step's expectations. No protocol logic here.

Used by test_scenarios.py (one pytest case per file); the session-finish hook
in conftest.py prints ``scenarios: N passed, M failed``.
"""

from __future__ import annotations

import base64
import enum
import json
import logging
import os
import pathlib
import secrets
import tempfile
import threading
import urllib.error
import urllib.request
from typing import Any, Dict, List, Optional, Tuple

import edrlink

REPO = pathlib.Path(__file__).resolve().parents[2]
SCENARIOS = REPO / "tests" / "scenarios"
PARTNER = "acme-av"
LOG = logging.getLogger("edrlink")

SEVERITY = {"error": 4, "warn": 3, "info": 2, "debug": 1, "trace": 0}
KNOWN_EXPECT = {"error", "retry_after", "http_status", "number", "status", "result", "events", "no_events", "log"}


def files() -> List[pathlib.Path]:
    return sorted(SCENARIOS.glob("*.json"))


class StepFailed(Exception):
    pass


class Failure:
    """A failed call, as the README's error object."""

    def __init__(self, code: str, number: int, http_status: int, retry_after: Optional[int], detail: str) -> None:
        self.code, self.number, self.http_status, self.retry_after, self.detail = code, number, http_status, retry_after, detail

    @staticmethod
    def of(e: edrlink.EdrlinkError) -> "Failure":
        return Failure(e.code, e.number, e.http_status, e.retry_after, e.detail)


def plain(v: Any) -> Any:
    """A generated record / enum as the core's JSON shape (snake_case keys,
    enums by their lower-case name)."""
    if isinstance(v, enum.Enum):
        return v.name.lower()
    if isinstance(v, (bytes, bytearray)):
        return base64.urlsafe_b64encode(v).rstrip(b"=").decode()
    if isinstance(v, dict):
        return {k: plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [plain(x) for x in v]
    if hasattr(v, "__dict__") and not isinstance(v, type):
        return {k: plain(x) for k, x in vars(v).items() if not k.startswith("_")}
    return v


def b64url_decode(s: str) -> bytes:
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def json_text(v: Any) -> str:
    return v if isinstance(v, str) else json.dumps(v)


def json_eq(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b if isinstance(a, bool) and isinstance(b, bool) else False
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_eq(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_eq(a[k], b[k]) for k in a)
    return a == b


_ABSENT = object()


def get_path(v: Any, path: str) -> Any:
    length = path.endswith("#")
    if length:
        path = path[:-1]
    cur = v
    for seg in [s for s in path.split(".") if s]:
        if isinstance(cur, list):
            if not seg.isdigit() or int(seg) >= len(cur):
                return _ABSENT
            cur = cur[int(seg)]
        elif isinstance(cur, dict):
            if seg not in cur:
                return _ABSENT
            cur = cur[seg]
        else:
            return _ABSENT
    if length:
        return len(cur) if isinstance(cur, (list, dict)) else _ABSENT
    return cur


class Hooks:
    """The log and event hooks of one client: records what arrived during the
    current step, and routes log records into Python's ``logging``."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: List[Dict[str, Any]] = []
        self.logs: List[Tuple[str, str]] = []

    def clear(self) -> None:
        with self.lock:
            self.events.clear()
            self.logs.clear()


class LogSink(edrlink.LoggingSink):
    """edrlink.LoggingSink (records go to Python's ``logging``, logger
    ``edrlink``) that also keeps what arrived during the current step."""

    def __init__(self, hooks: Hooks) -> None:
        super().__init__(LOG)
        self.hooks = hooks

    def log(self, level: Any, message: str) -> None:
        super().log(level, message)
        with self.hooks.lock:
            self.hooks.logs.append((level.name.lower(), message))


class EventSink(edrlink.EventSink):  # type: ignore[misc]
    def __init__(self, hooks: Hooks) -> None:
        self.hooks = hooks

    def on_event(self, event: Any) -> None:
        with self.hooks.lock:
            self.hooks.events.append(json.loads(edrlink.client_event_to_json(event)))


class Runner:
    def __init__(self, url: str, admin_key: str) -> None:
        self.url = url.rstrip("/")
        self.admin_key = admin_key

    def admin(self, method: str, path: str, body: Any = None) -> Tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("authorization", f"Bearer {self.admin_key}")
        req.add_header("content-type", "application/json")
        req.add_header("connection", "close")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                status, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read()
        try:
            return status, (json.loads(text) if text else None)
        except ValueError:
            raise StepFailed(f"{method} {path}: answer is not JSON: {text[:200]!r}") from None

    def run(self, file: pathlib.Path) -> None:
        Run(self, file).run()


def _secret_name(var: str) -> bool:
    return var.startswith("token") or var.startswith("package") or "key" in var


def _collect(v: Any, under: bool, out: List[str]) -> None:
    if isinstance(v, str):
        if under:
            out.append(v)
    elif isinstance(v, list):
        for x in v:
            _collect(x, under, out)
    elif isinstance(v, dict):
        for k, x in v.items():
            _collect(x, under or k in ("token", "workspace_key", "package"), out)


class Run:
    def __init__(self, runner: Runner, file: pathlib.Path) -> None:
        self.r = runner
        self.sc = json.loads(file.read_text())
        self.name = self.sc.get("name") or file.stem
        self.vars: Dict[str, Any] = {}
        self.clients: Dict[str, Tuple[edrlink.EdrlinkClient, Hooks]] = {}
        self.secrets: List[str] = []
        self.tmp = tempfile.TemporaryDirectory(prefix="edrlink-scn-")

    def run(self) -> None:
        if not self.sc.get("story"):
            raise StepFailed("no story")
        steps = self.sc.get("steps")
        if not isinstance(steps, list):
            raise StepFailed("no steps")
        tenant = "scn-" + secrets.token_hex(6)
        self.vars = {"tenant": tenant, "partner": PARTNER, "service_url": self.r.url}
        s, b = self.r.admin("POST", "/admin/tenants", {"tenant_id": tenant, "region": "eu"})
        if s != 201:
            raise StepFailed(f"setup: creating the tenant answered {s}: {b}")
        s, b = self.r.admin("PUT", f"/admin/tenants/{tenant}/integrations/{PARTNER}", {"enabled": True})
        if s != 200:
            raise StepFailed(f"setup: turning the integration on answered {s}: {b}")
        try:
            for i, step in enumerate(steps):
                try:
                    self.step(step)
                except StepFailed as e:
                    raise StepFailed(f"step {i} ({step.get('do')}): {e}") from None
        finally:
            for c, _ in self.clients.values():
                c.close()
            self.tmp.cleanup()

    # -- variables
    def subst(self, v: Any) -> Any:
        if isinstance(v, str):
            if v.startswith("${") and v.endswith("}") and v.count("${") == 1 and v.count("}") == 1:
                name = v[2:-1]
                if name not in self.vars:
                    raise StepFailed(f"unknown variable {name}")
                return self.vars[name]
            out, rest = "", v
            while "${" in rest:
                i = rest.index("${")
                out += rest[:i]
                after = rest[i + 2:]
                if "}" not in after:
                    raise StepFailed(f"unclosed ${{ in {v}")
                j = after.index("}")
                name = after[:j]
                if name not in self.vars:
                    raise StepFailed(f"unknown variable {name}")
                out += json_text(self.vars[name])
                rest = after[j + 1:]
            return out + rest
        if isinstance(v, list):
            return [self.subst(x) for x in v]
        if isinstance(v, dict):
            return {k: self.subst(x) for k, x in v.items()}
        return v

    # -- one step
    def step(self, raw: Dict[str, Any]) -> None:
        step = self.subst(raw)
        kind = step.get("do")
        if not isinstance(kind, str):
            raise StepFailed('no "do"')
        expect = step.get("expect") or {}
        unknown = set(expect) - KNOWN_EXPECT
        if unknown:
            raise StepFailed(f"unknown expectation {sorted(unknown)}")
        cname = step.get("client", "a")
        if cname in self.clients:
            self.clients[cname][1].clear()

        admin_status: Optional[int] = None
        outcome: Any = None
        if kind == "admin":
            admin_status, outcome = self.r.admin(step["method"], step["path"], step.get("body"))
            _collect(outcome, False, self.secrets)
        else:
            try:
                outcome = self.call(kind, cname, step)
            except edrlink.EdrlinkError as e:
                outcome = Failure.of(e)

        self.check_secrets(cname, outcome)
        want_err = expect.get("error")
        if isinstance(outcome, Failure):
            if want_err is None:
                raise StepFailed(f"failed with {outcome.code} ({outcome.detail}), expected success")
            if outcome.code != want_err:
                raise StepFailed(f"failed with {outcome.code} ({outcome.detail}), expected {want_err}")
            if "retry_after" in expect and not json_eq(outcome.retry_after, expect["retry_after"]):
                raise StepFailed(f"retry_after {outcome.retry_after}, expected {expect['retry_after']}")
            for k in ("http_status", "number"):
                if k in expect and not json_eq(getattr(outcome, k), expect[k]):
                    raise StepFailed(f"{k} {getattr(outcome, k)}, expected {expect[k]}")
            result = None
        else:
            if want_err is not None:
                raise StepFailed(f"succeeded, expected error {want_err}")
            result = outcome
        if "status" in expect:
            if admin_status is None:
                raise StepFailed("status is an expectation of admin steps")
            if not json_eq(admin_status, expect["status"]):
                raise StepFailed(f"HTTP status {admin_status}, expected {expect['status']}: {outcome}")
        elif admin_status is not None and not 200 <= admin_status < 300:
            raise StepFailed(f"HTTP status {admin_status}: {outcome}")
        for path, v in (expect.get("result") or {}).items():
            got = get_path(result, path)
            if got is _ABSENT or not json_eq(got, v):
                raise StepFailed(f"{path} = {'<absent>' if got is _ABSENT else json.dumps(got)}, expected {json.dumps(v)} (result {json.dumps(result)})")
        for var, path in (step.get("save") or {}).items():
            got = get_path(result, path)
            if got is _ABSENT:
                raise StepFailed(f"save: {path} is absent in {json.dumps(result)}")
            if _secret_name(var):
                _collect(got, isinstance(got, str), self.secrets)
            self.vars[var] = got
        self.check_hooks(cname, expect)

    def check_hooks(self, cname: str, expect: Dict[str, Any]) -> None:
        if not any(k in expect for k in ("events", "no_events", "log")):
            return
        if cname not in self.clients:
            raise StepFailed("events/log expectations need a client")
        hooks = self.clients[cname][1]
        with hooks.lock:
            events, logs = list(hooks.events), list(hooks.logs)

        def seen(want: str) -> bool:
            ty, _, sub = want.partition(":")
            return any(
                e.get("type") == ty and (not sub or any(k != "type" and v == sub for k, v in e.items()))
                for e in events
            )

        for w in expect.get("events") or []:
            if not seen(w):
                raise StepFailed(f"event {w} not received (got {events})")
        for w in expect.get("no_events") or []:
            if seen(w):
                raise StepFailed(f"event {w} received (got {events})")
        if "log" in expect:
            level = expect["log"]
            if level not in SEVERITY:
                raise StepFailed(f"unknown log level {level}")
            if not any(SEVERITY[lv] >= SEVERITY[level] for lv, _ in logs):
                raise StepFailed(f"no log record at {level} or more severe (got {logs})")

    def check_secrets(self, cname: str, outcome: Any) -> None:
        texts: List[str] = []
        if isinstance(outcome, Failure):
            texts.append(outcome.detail)
        else:
            d = get_path(outcome, "last_error.detail")
            if isinstance(d, str):
                texts.append(d)
        if cname in self.clients:
            client, hooks = self.clients[cname]
            with hooks.lock:
                texts.extend(m for _, m in hooks.logs)
            try:
                err = client.health().last_error
            except edrlink.EdrlinkError:
                err = None
            if err is not None:
                texts.append(err.detail)
        for s in self.secrets:
            if len(s) >= 12 and any(s in t for t in texts):
                raise StepFailed("a secret appeared in a log message or an error detail")

    # -- the binding's API
    def call(self, kind: str, cname: str, step: Dict[str, Any]) -> Any:
        if kind == "client":
            return self.new_client(cname, step)
        if kind == "inspect_token":
            return plain(edrlink.inspect_token(step["token"], step.get("now")))
        if kind == "verify_envelope":
            c = edrlink.verify_envelope(step["envelope"].encode(), self.b64(step["public_key"]))
            return {"payload_type": c.payload_type, "keyid": c.keyid}
        if kind == "public_key_from_seed":
            pk = edrlink.public_key_from_seed(self.b64(step["seed"]))
            return {"public_key": plain(pk)}
        if cname not in self.clients:
            raise StepFailed(f'no client {cname} (add a "client" step)')
        c = self.clients[cname][0]
        if kind == "enroll":
            return plain(c.enroll(step["token"]))
        if kind == "enroll_package":
            return plain(c.enroll_with_package(json_text(step["package"])))
        if kind == "handshake":
            return {"flow": plain(c.handshake())}
        if kind == "submit":
            c.submit_json(json.dumps(step["event"]))
            return None
        if kind == "submit_json":
            c.submit_json(step["json"])
            return None
        if kind == "send_test_detection":
            c.send_test_detection()
            return None
        if kind == "flush":
            o = c.flush(int(step.get("timeout_secs", 10)))
            return {"delivered": o.delivered, "queued": o.queued}
        if kind == "offboard":
            p = step.get("package")
            c.offboard(None if p is None else json_text(p))
            return None
        if kind == "rotate":
            c.rotate()
            return None
        if kind == "health":
            return plain(c.health())
        raise StepFailed(f"unknown step kind {kind}")

    @staticmethod
    def b64(s: str) -> bytes:
        try:
            return b64url_decode(s)
        except ValueError as e:
            raise StepFailed(f"scenario value is not base64url: {e}") from None

    def new_client(self, cname: str, step: Dict[str, Any]) -> None:
        dev = edrlink.DeviceInfo(
            device_id=step.get("device_id") or f"{self.vars['tenant']}-{cname}",
            hostname=f"host-{cname}",
            os="linux",
            os_version="6.1",
            product="scenario",
            product_version="1.0",
        )
        data_dir = os.path.join(self.tmp.name, f"client-{secrets.token_hex(6)}")
        # Options by their schema names, checked by the core (unknown name or
        # out of range: invalid_argument naming it).
        text = json.dumps({**(step.get("options") or {}), "device": plain(dev), "data_dir": data_dir})
        client = edrlink.EdrlinkClient(
            edrlink.client_options_from_json(text),
            transport_options=edrlink.NativeTransportOptions(no_proxy=True),
        )
        hooks = Hooks()
        client.set_log_sink(LogSink(hooks), edrlink.LogLevel.DEBUG)
        client.set_event_sink(EventSink(hooks))
        old = self.clients.pop(cname, None)
        if old is not None:
            old[0].close()
        self.clients[cname] = (client, hooks)
        return None
