"""The lines a change touched since a git revision: `git diff --unified=0 REF` (working tree,
staged or not) plus untracked files, for the changed-lines gate (`--diff-base REF`)."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from typing import Optional, Sequence

_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"'}


class GitDiffError(Exception):
    """git is missing, the directory is not a repository, or the revision is unknown."""


@dataclass
class ChangedLines:
    """Per file (absolute, real path): the new-side lines added or modified, and the places where
    lines were only removed (`n` means between new lines n and n+1). `whole` files are new."""

    lines: dict[str, set[int]] = field(default_factory=dict)
    removals: dict[str, set[int]] = field(default_factory=dict)
    whole: set[str] = field(default_factory=set)

    def touches(self, path: str, line: int, end_line: int) -> bool:
        """Whether a finding spanning `line`..`end_line` of `path` is on a changed line (any of
        its lines counts), or encloses a place where lines were removed."""
        key = os.path.realpath(path)
        if key in self.whole:
            return True
        changed = self.lines.get(key)
        if changed and any(n in changed for n in range(line, max(line, end_line) + 1)):
            return True
        removed = self.removals.get(key)
        return bool(removed) and any(line <= n < end_line for n in removed or ())


def _git(args: Sequence[str], cwd: str) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(
            ["git", "-c", "core.quotepath=off", *args],
            cwd=cwd,
            capture_output=True,
            check=False,
            # Never wait for a credential prompt or a pager.
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_PAGER": "cat", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise GitDiffError("--diff-base needs git, and `git` was not found on PATH") from None
    except OSError as exc:
        raise GitDiffError(f"cannot run git: {exc.strerror or exc}") from None


def _first_line(data: bytes) -> str:
    text = data.decode("utf-8", "replace").strip()
    return text.splitlines()[0] if text else ""


def unquote(path: str) -> str:
    """A path as git prints it: C-style quoted (with octal UTF-8 bytes) when unusual."""
    if not (len(path) >= 2 and path[0] == '"' and path[-1] == '"'):
        return path
    body = path[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            if re.fullmatch(r"[0-7]{3}", body[i + 1 : i + 4]):
                out.append(int(body[i + 1 : i + 4], 8))
                i += 4
                continue
            out.extend(_ESCAPES.get(nxt, nxt).encode())
            i += 2
            continue
        out.extend(ch.encode())
        i += 1
    return out.decode("utf-8", "surrogateescape")


def parse_diff(diff: str, root: str) -> ChangedLines:
    """Changed lines from `git diff --unified=0` output with `a/` and `b/` prefixes."""
    out = ChangedLines()
    current: Optional[str] = None
    for raw in diff.split("\n"):
        if raw.startswith("+++ "):
            target = unquote(raw[4:].rstrip("\t"))
            current = None if target == "/dev/null" else os.path.realpath(os.path.join(root, target[2:]))
            continue
        if current is None or not raw.startswith("@@"):
            continue
        match = _HUNK.match(raw)
        if match is None:
            continue
        start = int(match.group(1))
        count = int(match.group(2)) if match.group(2) is not None else 1
        if count:
            out.lines.setdefault(current, set()).update(range(start, start + count))
        else:
            out.removals.setdefault(current, set()).add(start)
    return out


def changed_lines(ref: str, cwd: Optional[str] = None) -> ChangedLines:
    """Lines added or modified since `ref`, in the repository that contains `cwd`."""
    cwd = cwd or os.getcwd()
    if not ref or ref.startswith("-"):
        raise GitDiffError(f"--diff-base: `{ref}` is not a revision")
    top = _git(["rev-parse", "--show-toplevel"], cwd)
    if top.returncode != 0:
        raise GitDiffError(f"--diff-base needs a git repository, and {cwd} is not inside one")
    root = os.path.realpath(top.stdout.decode("utf-8", "surrogateescape").strip())
    verify = _git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"], root)
    if verify.returncode != 0:
        shallow = _git(["rev-parse", "--is-shallow-repository"], root).stdout.strip() == b"true"
        if shallow:
            raise GitDiffError(
                f"--diff-base: revision `{ref}` is not in this shallow clone; fetch it first "
                f"(`git fetch --depth=1 origin {ref}`, or check out with `fetch-depth: 0`)"
            )
        raise GitDiffError(f"--diff-base: unknown revision `{ref}` (fetch it, or name a branch, tag or commit)")
    commit = verify.stdout.decode().strip()
    diff = _git(
        [
            "diff",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            "--unified=0",
            "--find-renames",
            "--src-prefix=a/",
            "--dst-prefix=b/",
            commit,
            "--",
        ],
        root,
    )
    if diff.returncode != 0:
        raise GitDiffError(f"--diff-base: git diff failed: {_first_line(diff.stderr)}")
    out = parse_diff(diff.stdout.decode("utf-8", "surrogateescape"), root)
    untracked = _git(["ls-files", "--others", "--exclude-standard", "-z"], root)
    if untracked.returncode != 0:
        raise GitDiffError(f"--diff-base: git ls-files failed: {_first_line(untracked.stderr)}")
    for name in untracked.stdout.split(b"\0"):
        if name:
            out.whole.add(os.path.realpath(os.path.join(root, name.decode("utf-8", "surrogateescape"))))
    return out
