"""Role templates: what an agent of each role is told, in its preamble and its instruction block.

A repo's own `.thrum/role_templates/<role>.md` wins over the shipped default of the same name, so a
team edits its roles in one place; a role with neither gets the generic `agent` template. Variables
are `{{name}}` placeholders (unknown ones are left as written, so a typo shows instead of vanishing).
Stdlib only: quickstart renders a preamble on the CLI's light path.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

SHIPPED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "role_templates")
SHIPPED_ROLES: tuple[str, ...] = (
    "coordinator",
    "orchestrator",
    "implementer",
    "reviewer",
    "planner",
    "tester",
)
FALLBACK = "agent"
VARIABLES: tuple[str, ...] = ("agent", "role", "module", "module_note", "worktree", "coordinator", "repo")
# `init --roles`: copy the shipped templates into the repo to edit (enhanced), use them as shipped
# (default), or give agents only the short generic preamble (skip).
ROLE_MODES: tuple[str, ...] = ("enhanced", "default", "skip")
_VAR = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


def coordinator_of(agents: list[dict], agent: str | None = None, main: str | None = None) -> str:
    """Whom `agent`'s templates tell it to report to: an agent of the coordinator role, else the
    person at the console (a `user`), else an operator, else whoever is registered in the main
    checkout `main` (the operator by place, DESIGN.md); `coordinator` (the role's address) when the
    team has none of them yet. A name that is not there is an address that fails (walk, session 21:
    "Your coordinator is @coordinator", and `--to @coordinator` was an unknown recipient; contract
    walk, session 22: the lead in the main checkout was not considered)."""
    import os

    home = os.path.realpath(main) if main else None
    others = [a for a in agents if a.get("name") != agent]
    for fits in (
        lambda a: a.get("role") == "coordinator",
        lambda a: a.get("kind") == "user",
        lambda a: a.get("role") == "operator",
        lambda a: home is not None and bool(a.get("worktree")) and os.path.realpath(a["worktree"]) == home,
    ):
        found = sorted(a["name"] for a in others if fits(a))
        if found:
            return found[0]
    return "coordinator"


@dataclass(frozen=True)
class RoleVars:
    agent: str
    role: str
    module: str = ""
    worktree: str = ""
    coordinator: str = "coordinator"
    repo: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "agent": self.agent,
            "role": self.role,
            "module": self.module,
            "module_note": f" ({self.module})" if self.module else "",
            "worktree": self.worktree,
            "coordinator": self.coordinator,
            "repo": os.path.basename(self.repo.rstrip("/")) if self.repo else "",
        }


def repo_dir(repo: str) -> str:
    return os.path.join(repo, ".thrum", "role_templates")


def template_path(repo: str, role: str) -> tuple[str, str]:
    """(path, origin) of the template an agent of `role` gets: origin is repo, shipped or fallback."""
    safe = role if re.fullmatch(r"[a-z0-9_]+", role or "") else FALLBACK
    own = os.path.join(repo_dir(repo), f"{safe}.md")
    if os.path.isfile(own):
        return own, "repo"
    shipped = os.path.join(SHIPPED_DIR, f"{safe}.md")
    if os.path.isfile(shipped):
        return shipped, "shipped"
    own_fallback = os.path.join(repo_dir(repo), f"{FALLBACK}.md")
    if os.path.isfile(own_fallback):
        return own_fallback, "repo"
    return os.path.join(SHIPPED_DIR, f"{FALLBACK}.md"), "fallback"


def render_text(text: str, values: RoleVars) -> str:
    table = values.as_dict()
    return _VAR.sub(lambda m: table.get(m.group(1), m.group(0)), text)


def render(repo: str, values: RoleVars) -> str:
    path, _ = template_path(repo, values.role)
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    out = render_text(text, values)
    return out if out.endswith("\n") else out + "\n"


def templates(repo: str) -> list[dict]:
    """Every template a role can get here: the repo's own and the shipped ones it does not override."""
    found: dict[str, dict] = {}
    for origin, d in (("shipped", SHIPPED_DIR), ("repo", repo_dir(repo))):
        try:
            names = sorted(n for n in os.listdir(d) if n.endswith(".md"))
        except OSError:
            continue
        for n in names:
            found[n[:-3]] = {"role": n[:-3], "origin": origin, "path": os.path.join(d, n)}
    return [found[k] for k in sorted(found)]


def shipped_files() -> dict[str, str]:
    """role -> text of each shipped template (what `init --roles enhanced` copies)."""
    out = {}
    for role in (*SHIPPED_ROLES, FALLBACK):
        with open(os.path.join(SHIPPED_DIR, f"{role}.md"), encoding="utf-8") as fh:
            out[role] = fh.read()
    return out
