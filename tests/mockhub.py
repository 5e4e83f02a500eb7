"""A tiny stand-in for the Hugging Face Hub on 127.0.0.1, enough for `hf_hub_download` and `snapshot_download`.

It serves what huggingface_hub reads (see its `file_download.get_hf_file_metadata` and `utils/_http.py`):
- `HEAD`/`GET /{org}/{name}/resolve/{rev}/{file}`: the bytes, with `X-Repo-Commit` (the 40-hex commit the
  revision resolved to), `ETag` (quoted sha256, as the Hub does for LFS files; the client names the cache blob
  after it) and `Content-Length`; a `Range: bytes=a-b` request gets a 206 partial answer.
- `GET /api/models/{org}/{name}/revision/{rev}`: `{"id", "sha", "siblings": [{"rfilename"}]}`.
- `GET /api/models/{org}/{name}/tree/{rev}[/{dir}]`: the file listing of that commit.
- Anything else is a 404. Errors carry `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`,
  `GatedRepo`), which huggingface_hub maps to its exception classes.

And what `HfApi.create_repo`, `create_branch` and `create_commit` send (see huggingface_hub's
`hf_api.py` and `_commit_api.py`), so that pushing can be tested:
- `POST /api/repos/create` `{"name", "organization", "visibility"}`: an empty repo (one commit holding
  `.gitattributes`, as the Hub makes), `{"url"}`; 409 when it exists.
- `POST /api/validate-yaml`: accepts any model card metadata.
- `POST /api/models/{org}/{name}/preupload/{rev}`: every file is uploaded `regular` (inline, base64).
- `POST /api/models/{org}/{name}/branch/{branch}`: a branch at main's head; 409 when it exists.
- `POST /api/models/{org}/{name}/commit/{rev}` (NDJSON header + files): a new commit on that branch.
With `write_token` set, every POST needs `Authorization: Bearer <write_token>` (else 401).
Every request is logged as `(method, raw path)` in `MockHub.requests`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import unquote, urlsplit

_RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")


class _NotFound(Exception):
    """A lookup failed; `code` is the Hub's X-Error-Code and `commit` the resolved commit, if any."""

    def __init__(self, code: str, message: str, commit: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.commit = commit


class MockHub:
    """Repos held in memory, served over HTTP by a background thread; use as a context manager."""

    def __init__(self) -> None:
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo_id -> commit sha -> filename -> bytes
        self.branches: dict[str, dict[str, str]] = {}  # repo_id -> branch name -> commit sha
        self.tokens: dict[str, str] = {}  # private repo_id -> the token it requires
        self.gated: set[str] = set()  # repo_ids that refuse every download as gated
        self.private: set[str] = set()  # repo_ids created as private through the API
        self.commit_messages: dict[str, str] = {}  # commit sha -> summary, for commits made through the API
        self.write_token: str | None = None  # required on POST requests when set
        self.requests: list[tuple[str, str]] = []  # (method, raw path), in arrival order
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ content

    def add_commit(self, repo_id: str, files: dict[str, bytes], *, branch: str = "main") -> str:
        """Add a commit holding exactly `files`, move `branch` to it, and return its 40-hex sha."""
        commits = self.repos.setdefault(repo_id, {})
        # A deterministic sha that differs per repo, per content and per position in history.
        digest = hashlib.sha1(f"{repo_id}\n{len(commits)}\n".encode())
        for name in sorted(files):
            digest.update(name.encode() + b"\0" + files[name])
        sha = digest.hexdigest()
        commits[sha] = dict(files)
        self.branches.setdefault(repo_id, {})[branch] = sha
        return sha

    def resolve(self, repo_id: str, revision: str) -> tuple[str, dict[str, bytes]]:
        """Commit sha and files for a branch name or a commit sha; raise _NotFound otherwise."""
        if repo_id not in self.repos:
            raise _NotFound("RepoNotFound", f"Repository {repo_id} not found")
        sha = self.branches[repo_id].get(revision, revision)
        if sha not in self.repos[repo_id]:
            raise _NotFound("RevisionNotFound", f"Invalid rev id: {revision}")
        return sha, self.repos[repo_id][sha]

    def paths_requested(self, method: str | None = None) -> list[str]:
        """Raw paths requested so far, optionally only those with `method`."""
        with self._lock:
            return [path for verb, path in self.requests if method is None or verb == method]

    def _log(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    # ------------------------------------------------------------------ server life

    @property
    def url(self) -> str:
        """Base URL to use as `endpoint=` / HF_ENDPOINT (valid only while running)."""
        if self._server is None:
            raise RuntimeError("MockHub is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MockHub:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.hub = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="mockhub", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port; afterwards connections to `url` are refused."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()
        self._server = None
        self._thread = None

    def __enter__(self) -> MockHub:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    hub: MockHub


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature fixed by the base class
        """Keep test output clean; requests are recorded in MockHub.requests instead."""

    def do_HEAD(self) -> None:
        self._handle(send_body=False)

    def do_GET(self) -> None:
        self._handle(send_body=True)

    def do_POST(self) -> None:
        hub = self.server.hub
        hub._log("POST", self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0") or 0))
        if hub.write_token is not None and self.headers.get("Authorization") != f"Bearer {hub.write_token}":
            self._send_error(401, None, "Invalid credentials in Authorization header", send_body=True)
            return
        parts = [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]
        try:
            if parts == ["api", "repos", "create"]:
                self._create_repo(json.loads(body))
            elif parts == ["api", "validate-yaml"]:
                self._send_json({"errors": [], "warnings": []})
            elif len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "preupload":
                hub.resolve(f"{parts[2]}/{parts[3]}", parts[5])
                files = json.loads(body)["files"]
                self._send_json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]})
            elif len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "branch":
                self._create_branch(f"{parts[2]}/{parts[3]}", parts[5])
            elif len(parts) == 6 and parts[:2] == ["api", "models"] and parts[4] == "commit":
                self._commit(f"{parts[2]}/{parts[3]}", parts[5], body)
            else:
                self._send_error(404, None, f"no route for POST {self.path}", send_body=True)
        except _NotFound as missing:
            self._send_error(404, missing.code, str(missing), commit=missing.commit, send_body=True)

    # ------------------------------------------------------------------ writes

    def _create_repo(self, payload: dict[str, object]) -> None:
        hub = self.server.hub
        repo_id = f"{payload['organization']}/{payload['name']}"
        if repo_id in hub.repos:
            self._send_error(409, None, "You already created this model repo", send_body=True)
            return
        hub.add_commit(repo_id, {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"})
        if payload.get("visibility") == "private":
            hub.private.add(repo_id)
        self._send_json({"url": f"{hub.url}/{repo_id}", "name": repo_id})

    def _create_branch(self, repo_id: str, branch: str) -> None:
        hub = self.server.hub
        head, files = hub.resolve(repo_id, "main")
        if branch in hub.branches[repo_id]:
            self._send_error(409, None, f"Branch {branch} already exists", send_body=True)
            return
        hub.branches[repo_id][branch] = head
        self._send_json({})

    def _commit(self, repo_id: str, revision: str, body: bytes) -> None:
        hub = self.server.hub
        if revision not in hub.branches.get(repo_id, {}):
            hub.resolve(repo_id, revision)  # raises RepoNotFound / RevisionNotFound
            self._send_error(400, None, "commits go to a branch", send_body=True)
            return
        _, files = hub.resolve(repo_id, revision)
        files = dict(files)
        summary = ""
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"]["summary"]
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:  # this mock answers "regular" to every preupload, so LFS items never come
                self._send_error(400, None, f"unsupported commit item {item['key']}", send_body=True)
                return
        sha = hub.add_commit(repo_id, files, branch=revision)
        hub.commit_messages[sha] = summary
        self._send_json({"commitUrl": f"{hub.url}/{repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": None})

    # ------------------------------------------------------------------ routing

    def _handle(self, *, send_body: bool) -> None:
        hub = self.server.hub
        hub._log(self.command, self.path)
        # Split before unquoting: the client quotes a revision such as 'refs/pr/1' into one segment.
        parts = [unquote(part) for part in urlsplit(self.path).path.strip("/").split("/")]
        try:
            if len(parts) >= 5 and parts[2] == "resolve":
                self._resolve_file(f"{parts[0]}/{parts[1]}", parts[3], "/".join(parts[4:]), send_body)
            elif send_body and len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
                self._revision_info(f"{parts[2]}/{parts[3]}", "/".join(parts[5:]))
            elif send_body and len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "tree":
                self._tree(f"{parts[2]}/{parts[3]}", parts[5], "/".join(parts[6:]))
            else:
                self._send_error(404, None, f"no route for {self.path}", send_body=send_body)
        except _NotFound as missing:
            self._send_error(404, missing.code, str(missing), commit=missing.commit, send_body=send_body)

    def _check_access(self, repo_id: str, send_body: bool) -> bool:
        """Send the refusal and return False if the repo is gated or private without the right token."""
        hub = self.server.hub
        if repo_id in hub.gated:
            self._send_error(403, "GatedRepo", f"Access to model {repo_id} is restricted", send_body=send_body)
            return False
        token = hub.tokens.get(repo_id)
        if token is not None and self.headers.get("Authorization") != f"Bearer {token}":
            # Like the Hub: a private repo looks missing to anyone without access.
            self._send_error(401, "RepoNotFound", "Invalid username or password.", send_body=send_body)
            return False
        return True

    def _resolve_file(self, repo_id: str, revision: str, filename: str, send_body: bool) -> None:
        if not self._check_access(repo_id, send_body):
            return
        sha, files = self.server.hub.resolve(repo_id, revision)
        if filename not in files:
            raise _NotFound("EntryNotFound", f"{filename} does not exist on {revision}", commit=sha)
        data = files[filename]
        start, end = 0, len(data)
        status = 200
        match = _RANGE_RE.fullmatch(self.headers.get("Range", ""))
        if match is not None:
            start = int(match.group(1))
            end = min(int(match.group(2)) + 1, len(data)) if match.group(2) else len(data)
            status = 206
        body = data[start:end]
        self.send_response(status)
        self.send_header("X-Repo-Commit", sha)
        self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(len(body)))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def _revision_info(self, repo_id: str, revision: str) -> None:
        if not self._check_access(repo_id, True):
            return
        sha, files = self.server.hub.resolve(repo_id, revision)
        siblings = [{"rfilename": name} for name in sorted(files)]
        self._send_json({"id": repo_id, "modelId": repo_id, "sha": sha, "private": False, "siblings": siblings})

    def _tree(self, repo_id: str, revision: str, folder: str) -> None:
        if not self._check_access(repo_id, True):
            return
        _, files = self.server.hub.resolve(repo_id, revision)
        prefix = f"{folder}/" if folder else ""
        entries = [_tree_entry(name, data) for name, data in sorted(files.items()) if name.startswith(prefix)]
        self._send_json(entries)

    # ------------------------------------------------------------------ answers

    def _send_json(self, payload: object) -> None:
        body = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_error(
        self, status: int, code: str | None, message: str, *, commit: str | None = None, send_body: bool
    ) -> None:
        body = json.dumps({"error": message}).encode()
        self.send_response(status)
        if code is not None:
            self.send_header("X-Error-Code", code)
        self.send_header("X-Error-Message", message)
        if commit is not None:
            # The client caches "this file is absent at this commit" under the commit it is told.
            self.send_header("X-Repo-Commit", commit)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if send_body:
            self.wfile.write(body)


def _tree_entry(name: str, data: bytes) -> dict[str, object]:
    """One file of a tree listing, shaped like the Hub's (git blob id plus LFS sha256 and size)."""
    blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    lfs = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data), "pointerSize": 134}
    return {"type": "file", "oid": blob_id, "size": len(data), "path": name, "lfs": lfs}
