// Thrum's OpenCode plugin (OpenCode 2.x plugin API), written by `thrum init --runtime opencode`.
// `thrum init --runtime opencode --force` rewrites this file: keep your own code in another plugin.
//
// What it does, as Thrum's hooks do for the other runtimes (each step runs `thrum hook EVENT`):
//   session created      -> session-start: the briefing, put into the system prompt of that session
//   each new user turn   -> prompt-submit: unread mail, added to that turn's system prompt
//   turn finished        -> stop: mail waiting -> a queued prompt tells the agent to read it
//   compaction           -> pre-compact saves context; afterwards a fresh briefing (source "compact")
// Engine down or repo not initialised: `thrum hook` says nothing and this plugin adds nothing.
//
// The 2.x format, as OpenCode loads it (sources, read 2026-12):
//   * packages/core/src/plugin/source-directory.ts (anomalyco/opencode): direct .js/.ts children of
//     `.opencode/plugins/` (and `plugin/`) in every config directory are loaded;
//   * packages/core/src/plugin/module.ts: the module's default export must be `{id, setup}` (or
//     `{id, effect}`); a 1.x plugin (exported hook functions) fails with "Plugin must export a
//     default definition with an id and an effect or setup function.";
//   * packages/plugin/src/promise/plugin.ts: `Plugin.define(p)` returns `p`, so no import is needed
//     (local plugins get no dependencies installed: packages/docs/build/plugins.mdx);
//   * packages/docs/build/plugins.mdx + packages/plugin/src/promise/session.ts: runtime hooks are
//     registered with `ctx.session.hook(name, cb)` ("context" in the source, "request" in the docs:
//     both are tried), the callback may push `{type: "text", text}` onto `event.system`; a hook that
//     throws fails the request, so every callback here catches;
//   * packages/schema/src/event.ts, session-event.ts, session-status-event.ts: `ctx.event.subscribe()`
//     yields `{type, data}` with `data.sessionID`; `session.execution.succeeded` ends a turn (as do
//     `session.status` with status idle and the deprecated `session.idle`: the first one counts),
//     `session.compaction.started` / `.ended` bracket a compaction;
//   * V2 plugins in the wild: `ctx.session.prompt({sessionID, text, delivery: "queue"})` queues a turn,
//     `session.created` carries `data.parentID` for sub-agent sessions (skipped here).
// tests/opencode_host.mjs loads this very file the same way and drives it (tests/test_opencode_plugin.py).

import { spawn } from "node:child_process"

// The thrum that installed this file (absolute: OpenCode 2.x runs plugins in a background service whose
// PATH need not be the pane's); where that path does not exist, the `thrum` on the PATH.
const THRUM = __THRUM_ARGV__
const TIMEOUT_MS = { "session-start": 10000, "prompt-submit": 5000, stop: 10000, "pre-compact": 10000 }
const STOP_LOOP_LIMIT = 8 // like Claude Code: after this many blocked stops in a row, let it stop

function thrumHook(event, payload, argv = THRUM) {
  // stdout of `thrum hook EVENT --runtime opencode` (plain text: the context or the block reason), or "".
  return new Promise((resolve) => {
    let out = ""
    let done = false
    const finish = (text) => {
      if (!done) {
        done = true
        resolve(text.trim())
      }
    }
    let child
    try {
      child = spawn(argv[0], [...argv.slice(1), "hook", event, "--runtime", "opencode"], {
        cwd: payload.cwd,
        stdio: ["pipe", "pipe", "ignore"],
      })
    } catch {
      return finish("")
    }
    const timer = setTimeout(() => {
      try {
        child.kill("SIGKILL")
      } catch {}
      finish("")
    }, TIMEOUT_MS[event] || 10000)
    child.on("error", (err) => {
      clearTimeout(timer)
      if (err && err.code === "ENOENT" && argv[0] !== "thrum" && !done) {
        done = true
        thrumHook(event, payload, ["thrum"]).then(resolve)
      } else finish("")
    })
    child.stdout.on("data", (chunk) => {
      out += chunk
    })
    child.on("close", (code) => {
      clearTimeout(timer)
      finish(code === 0 ? out : "")
    })
    child.stdin.on("error", () => {})
    child.stdin.end(JSON.stringify(payload))
  })
}

function userTurns(messages) {
  // How many user messages a request carries: a new one means a new turn (null: cannot tell).
  if (!Array.isArray(messages)) return null
  let n = 0
  let known = false
  for (const m of messages) {
    const role = m && (m.role ?? m.info?.role ?? m.type)
    if (typeof role === "string") known = true
    if (role === "user") n++
  }
  return known ? n : null
}

function sessionOf(ev) {
  const d = ev && ev.data
  if (d && typeof d.sessionID === "string") return d.sessionID
  if (d && d.info && typeof d.info.id === "string") return d.info.id
  return ev && ev.durable && typeof ev.durable.aggregateID === "string" ? ev.durable.aggregateID : null
}

export default {
  id: "thrum",
  setup: async (ctx) => {
    const directory = (ctx.location && ctx.location.directory) || ctx.directory || process.cwd()
    const sessions = new Map() // sessionID -> {briefing, source, turns, turnText, open, loops, sub}
    const seen = new WeakSet() // request events already given our text (both hook names may fire)
    const state = (id) => {
      let s = sessions.get(id)
      if (!s) {
        s = { briefing: null, source: "startup", turns: null, turnText: null, open: false, loops: 0, sub: false }
        sessions.set(id, s)
      }
      return s
    }
    const call = (event, id, extra) => thrumHook(event, { cwd: directory, session_id: id, ...extra })
    const brief = async (id, source) => {
      const s = state(id)
      s.briefing = call("session-start", id, { source }).then((text) => text || null)
      await s.briefing
    }

    const onRequest = async (event) => {
      try {
        if (!event || typeof event !== "object" || seen.has(event)) return
        seen.add(event)
        const id = event.sessionID
        if (typeof id !== "string" || (event.kind && event.kind !== "primary")) return
        const s = state(id)
        if (s.sub) return
        if (s.briefing === null) s.briefing = call("session-start", id, { source: s.source }).then((t) => t || null)
        const turns = userTurns(event.messages)
        if (!s.open || (turns !== null && s.turns !== null && turns > s.turns)) {
          s.open = true
          s.turnText = await call("prompt-submit", id, {})
        }
        if (turns !== null) s.turns = turns
        const parts = [await s.briefing, s.turnText].filter(Boolean)
        if (Array.isArray(event.system)) for (const text of parts) event.system.push({ type: "text", text })
      } catch {}
    }
    for (const name of ["context", "request"]) {
      try {
        await ctx.session.hook(name, onRequest)
      } catch {}
    }

    const onEvent = async (ev) => {
      const id = sessionOf(ev)
      if (!id) return
      const type = ev.type
      if (type === "session.created") {
        const s = state(id)
        s.sub = typeof (ev.data && (ev.data.parentID ?? ev.data.info?.parentID)) === "string"
        if (!s.sub) await brief(id, "startup")
        return
      }
      const s = sessions.get(id)
      if (s && s.sub) return
      const idle =
        type === "session.execution.succeeded" ||
        type === "session.idle" || // deprecated in 2.x, still emitted by some betas
        (type === "session.status" && ev.data && ev.data.status && ev.data.status.type === "idle")
      if (idle) {
        if (!s || !s.open) return // one stop per turn, whichever of these signals comes first
        s.open = false
        s.turnText = null
        const reason = await call("stop", id, { stop_hook_active: s.loops > 0 })
        if (reason && s.loops < STOP_LOOP_LIMIT) {
          s.loops++
          await ctx.session.prompt({ sessionID: id, text: reason, delivery: "queue" })
        } else s.loops = 0
      } else if (type === "session.execution.failed" || type === "session.execution.interrupted") {
        if (s) {
          s.open = false
          s.turnText = null
          s.loops = 0
        }
      } else if (type === "session.compaction.started") {
        await call("pre-compact", id, { trigger: (ev.data && ev.data.reason) || "" })
      } else if (type === "session.compaction.ended") {
        state(id).source = "compact"
        await brief(id, "compact")
      }
    }

    let stream = null
    let iterator = null
    let stopped = false
    try {
      stream = await ctx.event.subscribe()
      iterator = stream && stream[Symbol.asyncIterator] ? stream[Symbol.asyncIterator]() : null
    } catch {}
    const task = (async () => {
      if (!iterator) return
      while (!stopped) {
        let step
        try {
          step = await iterator.next()
        } catch {
          return
        }
        if (step.done) return
        try {
          await onEvent(step.value)
        } catch {}
      }
    })()
    return async () => {
      stopped = true
      try {
        if (iterator && iterator.return) await iterator.return()
      } catch {}
      await task
    }
  },
}
