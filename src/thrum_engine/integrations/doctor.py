"""`thrum doctor integrations`: is each runtime really wired in each worktree? Every file Thrum
installs read with its format's real parser, the prime entry where the runtime looks for it, the
hook commands resolvable and their events spelled as the runtime spells them, whether the hooks
ever fired, and whether `thrum mcp serve` starts and lists its tools. Each problem carries the one
command (or step) that fixes it."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tomllib

from thrum_engine import integrations
from thrum_engine.durations import parse_iso
from thrum_engine.integrations import gemini, opencode
from thrum_engine.integrations.common import JSON_DIALECT, MD_BEGIN, block_within, is_thrum_hook, loads
from thrum_engine.integrations.entries import PRIME, PRIME_FILE

CURSOR_EVENTS = frozenset(
    {
        "sessionStart", "sessionEnd", "beforeSubmitPrompt", "preToolUse", "postToolUse",
        "postToolUseFailure", "subagentStart", "subagentStop", "beforeShellExecution",
        "afterShellExecution", "beforeMCPExecution", "afterMCPExecution", "beforeReadFile",
        "afterFileEdit", "afterAgentResponse", "afterAgentThought", "preCompact", "stop",
        "beforeTabFileRead", "afterTabFileEdit",
    }
)  # fmt: skip


def front_matter(text: str) -> dict | None:
    """The `key: value` lines of a YAML front matter block (what skills and commands carry)."""
    if not text.startswith("---\n"):
        return None
    end = text.find("\n---", 4)
    if end < 0:
        return None
    out = {}
    for ln in text[4:end].splitlines():
        k, sep, v = ln.partition(":")
        if sep and k.strip():
            out[k.strip()] = v.strip()
    return out


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except OSError:
        return None


def _parse(rel: str, text: str, runtime: str = "") -> object:
    """A config file parsed as its runtime reads it (comments where it strips them)."""
    if rel.endswith((".json", ".jsonc")):
        return loads(text, JSON_DIALECT.get(runtime, "json"))
    if rel.endswith(".toml"):
        return tomllib.loads(text)
    return text


def _resolves(command: str) -> bool:
    try:
        head = shlex.split(command)[0]
    except (ValueError, IndexError):
        return False
    return os.access(head, os.X_OK) if os.sep in head else shutil.which(head) is not None


class Report:
    """The checks of one run. A note is a check not passed that only the user can settle outside
    Thrum (a trust step in the runtime's own UI): it carries its step but is no problem, as in
    `thrum doctor`, so a run that found nothing else wrong passes."""

    def __init__(self) -> None:
        self.checks: list[dict] = []

    def add(
        self,
        runtime: str,
        worktree: str,
        check: str,
        ok: bool,
        detail: str,
        fix: str = "",
        agent: str | None = None,
        *,
        note: bool = False,
    ) -> None:
        self.checks.append(
            {"runtime": runtime, "worktree": worktree, "agent": agent, "check": check, "ok": ok,
             "note": note and not ok, "detail": detail, "fix": "" if ok else fix}
        )  # fmt: skip

    @property
    def problems(self) -> list[dict]:
        return [c for c in self.checks if not c["ok"] and not c["note"]]

    @property
    def notes(self) -> list[dict]:
        return [c for c in self.checks if c["note"]]


def installed_runtimes(worktree: str) -> list[str]:
    """Runtimes with any of Thrum's files in `worktree`."""
    found = []
    for name in integrations.RUNTIMES:
        mod = integrations.module(name)
        rels = [PRIME_FILE.get(name)] + [
            getattr(mod, a, None) for a in ("HOOKS_FILE", "SETTINGS", "MCP", "RULE", "CONFIG")
        ]
        if any(r and os.path.exists(os.path.join(worktree, r)) for r in rels):
            found.append(name)
    return found


def _hook_entries(runtime: str, data: object) -> dict[str, list[str]]:
    """event -> Thrum hook commands found in a parsed hooks file."""
    hooks = data.get("hooks") if isinstance(data, dict) else None
    out: dict[str, list[str]] = {}
    if not isinstance(hooks, dict):
        return out
    for event, items in hooks.items():
        for it in items if isinstance(items, list) else []:
            if not isinstance(it, dict):
                continue
            cmds = (
                [it.get("command")]
                if runtime == "cursor"
                else [h.get("command") for h in it.get("hooks") or [] if isinstance(h, dict)]
            )
            out.setdefault(event, []).extend(c for c in cmds if isinstance(c, str) and is_thrum_hook(c))
    return out


_PLUGIN_ARGV = re.compile(r"^const THRUM = (\[.*\])$", re.MULTILINE)


def _check_plugin(rep: Report, wt: str, rel: str, text: str | None, fix: str) -> None:
    """Thrum's OpenCode plugin: there, the 2.x default export (`{id, setup}`: what OpenCode checks
    before it runs a plugin), and the thrum it starts found."""
    if text is None:
        rep.add("opencode", wt, "hooks", False, f"{rel} is missing: OpenCode runs no Thrum hooks", fix)
        return
    m = _PLUGIN_ARGV.search(text)
    argv = json.loads(m.group(1)) if m else None
    if "export default {" not in text or 'id: "thrum"' not in text or "setup:" not in text or not argv:
        rep.add(
            "opencode",
            wt,
            "hooks",
            False,
            f"{rel} is not Thrum's 2.x plugin (default export {{id, setup}})",
            fix,
        )
    elif not _resolves(shlex.join(argv)):
        rep.add("opencode", wt, "hooks", False, f"{rel}: the thrum it starts is not found: {argv[0]}", fix)
    else:
        rep.add("opencode", wt, "hooks", True, f"{rel}: plugin `thrum` ({', '.join(HOOK_NAMES)})")


HOOK_NAMES = ("session.created", "each turn's request", "session.execution.succeeded", "session.compaction.*")


def _last_fired(rec: dict, runtime: str) -> str | None:
    """When an agent's hooks for `runtime` last fired (an agent's record from `hooks.status`)."""
    mine = [e["at"] for e in (rec.get("events") or {}).values() if e.get("runtime") == runtime]
    return max(mine, key=parse_iso) if mine else None


def _check_trust(rep: Report, wt: str, hrel: str, agents: list[str], fired: dict, step: str) -> None:
    """Codex runs project hooks only after the user trusted their content in its `/hooks` screen, which
    Thrum cannot see; a firing after the hooks file last changed proves it. Without one it is a note:
    the step is the user's, in Codex, and a problem there would fail every run until they took it."""
    try:
        changed = os.stat(os.path.join(wt, hrel)).st_mtime
    except OSError:
        return  # the hooks check above says the file is missing
    records = [] if fired.get("_unknown") else [fired.get(e.partition(":")[0]) or {} for e in agents]
    last = max((parse_iso(t) for t in (_last_fired(r, "codex") for r in records) if t), default=None)
    if last is not None and last >= changed:
        rep.add("codex", wt, "hooks trust", True, "hooks have fired since install, so Codex trusts them")
    elif last is not None:
        rep.add(
            "codex", wt, "hooks trust", False,
            f"{hrel} changed since the hooks last fired: Codex skips them until you trust them again", step,
            note=True,
        )  # fmt: skip
    else:
        unknown = " (firings unknown: the engine is not running)" if fired.get("_unknown") else ""
        rep.add(
            "codex", wt, "hooks trust", False,
            f"no hook has fired here yet{unknown}: Codex skips project hooks until you trust them", step,
            note=True,
        )  # fmt: skip


def _settings(wt: str, runtime: str) -> dict:
    """A runtime's settings file in `wt` as it reads it; {} when missing or broken (its own check
    says which)."""
    rel = integrations.module(runtime).SETTINGS
    text = _read(os.path.join(wt, rel))
    try:
        data = _parse(rel, text, runtime) if text is not None else {}
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def check_worktree(rep: Report, runtime: str, wt: str, agents: list[str], fired: dict) -> None:
    mod = integrations.module(runtime)
    fix = f"cd {shlex.quote(wt)} && thrum init --runtime {runtime} --force"
    # instructions
    rel = getattr(mod, "INSTRUCTIONS", None) or getattr(mod, "RULE", None)
    if rel:
        text = _read(os.path.join(wt, rel))
        if text is None:
            rep.add(runtime, wt, "instructions", False, f"{rel} is missing", fix)
        elif runtime == "cursor":
            fm = front_matter(text)
            ok = bool(fm) and fm.get("alwaysApply") == "true"
            rep.add(
                runtime,
                wt,
                "instructions",
                ok,
                f"{rel}" + ("" if ok else ": no front matter with alwaysApply: true"),
                fix,
            )
        else:
            limit = getattr(mod, "READ_LIMIT", None)
            if MD_BEGIN not in text:
                ok, detail = False, f"{rel} has no Thrum block"
            elif limit is not None and not block_within(text, limit):
                ok = False
                detail = (
                    f"{rel}: Thrum's block ends past the first {limit // 1024} KiB, which is all"
                    f" {runtime} reads; the agent never sees it"
                )
            else:
                ok, detail = True, rel
            names = gemini.context_names(_settings(wt, runtime)) if runtime == "gemini" else None
            if ok and names is not None and rel not in names:
                ok = False
                detail = (
                    f"{mod.SETTINGS}: context.fileName names {', '.join(names)} but not {rel}: Gemini never"
                    " reads Thrum's block"
                )
            rep.add(runtime, wt, "instructions", ok, detail, fix)  # init adds it to the names
    # the prime entry
    prel = PRIME_FILE.get(runtime)
    if prel:
        text = _read(os.path.join(wt, prel))
        if text is None:
            rep.add(
                runtime,
                wt,
                "prime",
                False,
                f"{prel} is missing: `{PRIME[runtime]}` would be an unknown command",
                fix,
            )
        else:
            try:
                ok = (
                    "prompt" in tomllib.loads(text)
                    if prel.endswith(".toml")
                    else bool((front_matter(text) or {}).get("description"))
                )
                detail = f"{prel} defines {PRIME[runtime]}" if ok else f"{prel} lacks its prompt/description"
            except tomllib.TOMLDecodeError as exc:
                ok, detail = False, f"{prel} does not parse: {exc}"
            rep.add(runtime, wt, "prime", ok, detail, fix)
    else:
        rep.add(runtime, wt, "prime", True, f"typed as text: {PRIME[runtime]!r}")
    # hooks
    hrel = getattr(mod, "HOOKS_FILE", None) or (getattr(mod, "SETTINGS", None) if mod.HOOKS else None)
    if hrel and mod.HOOKS:
        text = _read(os.path.join(wt, hrel))
        try:
            if runtime == "opencode":  # a JS plugin, not a hooks file
                _check_plugin(rep, wt, hrel, text, fix)
                data = False
            else:
                data = _parse(hrel, text, runtime) if text is not None else None
        except ValueError as exc:
            rep.add(
                runtime,
                wt,
                "hooks",
                False,
                f"{hrel} does not parse: {exc}",
                f"fix {hrel} by hand, then: {fix}",
            )
            data = False
        off = gemini.hooks_off(data) if runtime == "gemini" and isinstance(data, dict) else None
        if data is None:
            rep.add(runtime, wt, "hooks", False, f"{hrel} is missing", fix)
        elif data is not False:
            found = _hook_entries(runtime, data)
            missing = [e for e in mod.HOOKS if not found.get(e)]
            bad = [c for cs in found.values() for c in cs if not _resolves(c)]
            if runtime == "cursor" and isinstance(data, dict):
                unknown = [e for e in (data.get("hooks") or {}) if e not in CURSOR_EVENTS]
                if unknown:
                    rep.add(
                        runtime,
                        wt,
                        "hooks",
                        False,
                        f"{hrel}: unknown events {unknown} never fire",
                        f"rename or remove them in {hrel}",
                    )
            if missing:
                rep.add(runtime, wt, "hooks", False, f"{hrel}: no Thrum hook for {', '.join(missing)}", fix)
            elif bad:
                rep.add(runtime, wt, "hooks", False, f"{hrel}: hook command not found: {bad[0]}", fix)
            elif off:
                rep.add(
                    runtime,
                    wt,
                    "hooks",
                    False,
                    f"{hrel}: {off}",
                    f"set hooksConfig.enabled to true in {hrel}",
                )
            else:
                rep.add(runtime, wt, "hooks", True, f"{hrel}: {', '.join(mod.HOOKS)}")
        if runtime == "codex":
            _check_trust(rep, wt, hrel, agents, fired, getattr(mod, "TRUST_STEP", ""))
        for entry in agents:
            agent, _, agent_runtime = entry.partition(":")
            if fired.get("_unknown") or agent_runtime != runtime:
                continue
            rec = fired.get(agent) or {}
            last = _last_fired(rec, runtime)
            if last:
                rep.add(
                    runtime,
                    wt,
                    "hooks fired",
                    True,
                    f"last fired {last} ({', '.join(sorted(rec.get('events') or {}))})",
                    agent=agent,
                )
            elif off:  # the reason, and its fix, said where the user looks
                rep.add(
                    runtime, wt, "hooks fired", False, f"@{agent}'s hooks never fired: {off}",
                    f"set hooksConfig.enabled to true in {hrel}", agent=agent,
                )  # fmt: skip
            else:
                # Codex: the trust note above says why and what to do; a second, failing check of the
                # same cause made every fresh Codex worktree exit 1 (walk, session 22).
                rep.add(
                    runtime, wt, "hooks fired", False, f"@{agent}'s hooks never fired",
                    f"start {runtime} in {wt} (`thrum tmux launch {agent}`); if they still do not fire, check {hrel} is loaded",
                    agent=agent, note=runtime == "codex",
                )  # fmt: skip
    elif not mod.HOOKS:
        rep.add(runtime, wt, "hooks", True, "none for this runtime: mail reaches it by nudge")
    # MCP
    mrel = (
        getattr(mod, "MCP", None)
        or getattr(mod, "CONFIG", None)
        or (getattr(mod, "SETTINGS", None) if runtime in ("gemini", "amp") else None)
    )
    if runtime == "opencode":  # the file the installer writes to (opencode.jsonc, if that is the one)
        mrel = opencode.config_file(lambda r: os.path.exists(os.path.join(wt, r)))
    if mrel and integrations.mcp_available():
        text = _read(os.path.join(wt, mrel))
        try:
            data = _parse(mrel, text, runtime) if text is not None else None
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            rep.add(
                runtime, wt, "mcp", False, f"{mrel} does not parse: {exc}", f"fix {mrel} by hand, then: {fix}"
            )
            return
        key = {"codex": "mcp_servers", "opencode": "mcp", "amp": "amp.mcpServers"}.get(runtime, "mcpServers")
        ok = isinstance(data, dict) and isinstance(data.get(key), dict) and "thrum" in data[key]
        rep.add(
            runtime,
            wt,
            "mcp",
            ok,
            f"{mrel}: " + ("thrum server configured" if ok else "no thrum server"),
            fix,
        )


def check_mcp_server(rep: Report, cwd: str) -> None:
    """Start `thrum mcp serve` through the official MCP client and list its tools."""
    if not integrations.mcp_available():
        return
    import asyncio

    from thrum_engine.integrations.common import thrum_executable

    async def probe() -> list[str]:
        from mcp import ClientSession, StdioServerParameters  # pyright: ignore[reportMissingImports]
        from mcp.client.stdio import stdio_client  # pyright: ignore[reportMissingImports]

        params = StdioServerParameters(command=thrum_executable(), args=["mcp", "serve"], cwd=cwd)
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return [t.name for t in (await session.list_tools()).tools]

    try:
        tools = asyncio.run(asyncio.wait_for(probe(), 15))
        rep.add(
            "mcp",
            cwd,
            "mcp server",
            bool(tools),
            f"`thrum mcp serve` lists {len(tools)} tools: {', '.join(tools)}",
        )
    except Exception as exc:  # noqa: BLE001 -- any failure to start or to talk is the finding
        rep.add(
            "mcp",
            cwd,
            "mcp server",
            False,
            f"`thrum mcp serve` did not answer: {exc}",
            "run `thrum mcp serve` in a shell to see why",
        )
