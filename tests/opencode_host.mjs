// A stand-in for the OpenCode 2.x server's plugin host, for tests: it finds the plugins in a
// project the way OpenCode does, imports them, checks their default export the way OpenCode does,
// runs their `setup(ctx)` with a context of the shape OpenCode passes, and then plays a session at
// them on command (JSON lines on stdin, one JSON answer line per command on stdout).
//
// Modelled on anomalyco/opencode (read 2026-12):
//   discovery   packages/core/src/plugin/source-directory.ts  (.opencode/{plugin,plugins}/: direct .js/.ts
//               children; a child directory through package.json exports|module|main or index.ts|js)
//   validation  packages/core/src/plugin/module.ts  (default: {id: string, setup: fn} | {id, effect: fn})
//   context     packages/plugin/src/promise/plugin.ts, packages/docs/build/plugins.mdx
//               (ctx.session.hook/prompt, ctx.event.subscribe, ctx.location, ctx.options)
//   events      packages/schema/src/event.ts ({id, type, created, data}), session-event.ts
//               (session.execution.*, session.compaction.*), session.created with data.sessionID
//   requests    packages/plugin/src/promise/session.ts (SessionContext: sessionID, agent, model, kind,
//               system[], messages[], options, tools)
// One version's hook name is known at a time (--hook-name, default "context"): registering any other
// name throws, as a host that does not know it would.
//
// Commands:  {"op":"created"} | {"op":"prompt","text":...} | {"op":"idle"} | {"op":"compact"} | {"op":"exit"}
// Answers:   {"ok":true, "system":[texts pushed], "queued":[prompts the plugin queued], "plugins":[ids]}
//            or {"ok":false, "error":"..."} (a plugin that fails to load is reported at start)

import fs from "node:fs"
import path from "node:path"
import readline from "node:readline"
import { pathToFileURL } from "node:url"

const args = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}
const project = fs.realpathSync(opt("--project", process.cwd()))
const hookName = opt("--hook-name", "context")
const sessionID = "ses_fake" + process.pid
const SETTLE_MS = 20000

function discover(configDir) {
  const out = []
  const children = []
  for (const source of ["plugin", "plugins"]) {
    const dir = path.join(configDir, source)
    let entries = []
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {}
    for (const e of entries) children.push({ e, target: path.join(dir, e.name) })
  }
  children.sort((a, b) => (a.target < b.target ? -1 : a.target > b.target ? 1 : 0))
  for (const { e, target } of children) {
    const source = target.endsWith(".ts") || target.endsWith(".js")
    if (e.isFile() && source) out.push(target)
    else if (e.isDirectory()) {
      let manifest = {}
      try {
        manifest = JSON.parse(fs.readFileSync(path.join(target, "package.json"), "utf8"))
      } catch {}
      const entry = [manifest.exports, manifest.module, manifest.main, "index.ts", "index.js"]
        .filter((x) => typeof x === "string")
        .map((x) => path.resolve(target, x))
        .find((x) => x.startsWith(target + path.sep) && fs.existsSync(x))
      if (entry) out.push(entry)
    }
  }
  return out
}

// The public event stream: each event is handed to the subscriber's iterator; it counts as handled
// when the subscriber asks for the next one (or stops), which is when emit() resolves.
function makeStream() {
  const subscribers = []
  return {
    subscribe() {
      const queue = []
      let waiting = null
      let current = null
      let closed = false
      const sub = {
        push(item) {
          if (closed) return item.done()
          if (waiting) {
            const w = waiting
            waiting = null
            current = item
            w({ value: item.event, done: false })
          } else queue.push(item)
        },
      }
      subscribers.push(sub)
      return {
        [Symbol.asyncIterator]() {
          return {
            next() {
              if (current) {
                current.done()
                current = null
              }
              if (closed) return Promise.resolve({ value: undefined, done: true })
              if (queue.length) {
                current = queue.shift()
                return Promise.resolve({ value: current.event, done: false })
              }
              return new Promise((resolve) => {
                waiting = resolve
              })
            },
            return() {
              closed = true
              if (current) current.done()
              for (const item of queue.splice(0)) item.done()
              if (waiting) waiting({ value: undefined, done: true })
              return Promise.resolve({ value: undefined, done: true })
            },
          }
        },
      }
    },
    emit(type, data) {
      const event = { id: "evt_" + Date.now() + Math.random().toString(16).slice(2), type, created: Date.now(), data }
      return Promise.all(
        subscribers.map((sub) => new Promise((done) => sub.push({ event, done }))),
      )
    },
  }
}

const stream = makeStream()
const hooks = []
const queued = []
const messages = []

const ctx = {
  options: {},
  location: { directory: project, worktree: project, project: { id: "prj_fake" } },
  plugin: { list: async () => loaded.map((p) => p.id) },
  session: {
    hook: async (name, callback) => {
      if (name !== hookName) throw new Error(`unknown session hook ${JSON.stringify(name)}`)
      hooks.push(callback)
      return { dispose: async () => hooks.splice(hooks.indexOf(callback), 1) }
    },
    prompt: async (input) => {
      if (!input || input.sessionID !== sessionID || typeof input.text !== "string") {
        throw new Error("session.prompt: needs {sessionID, text}")
      }
      queued.push({ text: input.text, delivery: input.delivery ?? null })
      return { id: "msg_" + queued.length, sessionID }
    },
  },
  event: { subscribe: () => stream.subscribe() },
}

const loaded = []
const cleanups = []

async function load() {
  for (const file of discover(path.join(project, ".opencode"))) {
    if (file.endsWith(".ts")) throw new Error(`${file}: this host imports JavaScript only`)
    const mod = await import(pathToFileURL(file).href)
    const def = mod.default
    const ok =
      def && typeof def === "object" && typeof def.id === "string" &&
      (typeof def.setup === "function" || typeof def.effect === "function")
    if (!ok) {
      throw new Error(
        `${file}: Plugin must export a default definition with an id and an effect or setup function.`,
      )
    }
    if (typeof def.setup !== "function") throw new Error(`${file}: this host runs Promise (setup) plugins only`)
    const cleanup = await def.setup(ctx)
    if (typeof cleanup === "function") cleanups.push(cleanup)
    loaded.push({ id: def.id, file })
  }
}

function withTimeout(promise, what) {
  let timer
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: plugin did not settle in ${SETTLE_MS} ms`)), SETTLE_MS)
    }),
  ]).finally(() => clearTimeout(timer))
}

async function request(text) {
  messages.push({ role: "user", content: text })
  const event = {
    sessionID,
    agent: "build",
    model: { providerID: "fake", modelID: "fake" },
    kind: "primary",
    system: [],
    messages: messages.map((m) => ({ ...m })),
    options: {},
    tools: {},
  }
  for (const cb of hooks) await cb(event)
  messages.push({ role: "assistant", content: "done" })
  return event.system.map((p) => (p && typeof p === "object" ? p.text : String(p)))
}

async function handle(cmd) {
  const before = queued.length
  let system = []
  if (cmd.op === "created") {
    await stream.emit("session.created", { sessionID, info: { id: sessionID } })
  } else if (cmd.op === "prompt") {
    await stream.emit("session.execution.started", { sessionID })
    system = await request(String(cmd.text ?? ""))
  } else if (cmd.op === "idle") {
    // A turn's end, as 2.x reports it three ways (durable, status, deprecated): one Stop, not three.
    await stream.emit("session.execution.succeeded", { sessionID })
    await stream.emit("session.status", { sessionID, status: { type: "idle" } })
    await stream.emit("session.idle", { sessionID })
  } else if (cmd.op === "compact") {
    await stream.emit("session.compaction.started", { sessionID, reason: "manual", recent: "" })
    await stream.emit("session.compaction.ended", { sessionID, reason: "manual", text: "summary", recent: "" })
  } else throw new Error(`unknown op ${JSON.stringify(cmd.op)}`)
  return { ok: true, system, queued: queued.slice(before) }
}

const say = (obj) => process.stdout.write(JSON.stringify(obj) + "\n")

try {
  await load()
  say({ ok: true, plugins: loaded.map((p) => p.id), hooks: hooks.length })
} catch (err) {
  say({ ok: false, error: String(err && err.message ? err.message : err) })
  process.exit(1)
}

const rl = readline.createInterface({ input: process.stdin })
for await (const line of rl) {
  if (!line.trim()) continue
  let cmd
  try {
    cmd = JSON.parse(line)
  } catch {
    say({ ok: false, error: "not JSON" })
    continue
  }
  if (cmd.op === "exit") break
  try {
    say(await withTimeout(handle(cmd), cmd.op))
  } catch (err) {
    say({ ok: false, error: String(err && err.message ? err.message : err) })
  }
}
for (const c of cleanups) await withTimeout(Promise.resolve(c()), "cleanup")
process.exit(0)
