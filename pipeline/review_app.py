"""The review and sign-off web app (``docintel review``): Starlette over the results store.

Everything is a plain HTML form POST (JavaScript adds keyboard shortcuts and nothing else), pages are Jinja2
templates with autoescaping, nothing is fetched from elsewhere, and a strict Content-Security-Policy allows
only this app's own script and style. A reviewer is named once per browser (a signed, HttpOnly,
SameSite=Strict session cookie); bound to anything but loopback the app needs registered reviewers and
their passwords. Every POST carries the session's CSRF token.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import tempfile
import time
from collections import defaultdict, deque
from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from pipeline.errors import ConfigurationError, DocintelError
from pipeline.reports.audit import AuditReport, Finding, report_for
from pipeline.review import (DECISIONS, STATUSES, FindingReview, Reviews, ReviewError, StaleDecision,
                             check_password, has_reviewers, reviewed_report)
from pipeline.settings import Settings
from pipeline.store import ResultStore

HERE = Path(__file__).parent
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SORTS = {"uncertain": "least certain first", "score": "highest score first", "document": "document order"}


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class LoginLimiter:
    """At most ``attempts`` failed logins per (name, address) in a sliding window."""

    def __init__(self, attempts: int, window_s: float) -> None:
        self.attempts, self.window_s = attempts, window_s
        self.failures: dict[tuple[str, str], deque] = defaultdict(deque)

    def blocked(self, key: tuple[str, str]) -> bool:
        failures = self.failures[key]
        while failures and failures[0] < time.monotonic() - self.window_s:
            failures.popleft()
        return len(failures) >= self.attempts

    def failed(self, key: tuple[str, str]) -> None:
        self.failures[key].append(time.monotonic())


def _secret(settings: Settings) -> str:
    """The key that signs session cookies, kept beside the store (mode 0600) so sessions survive a restart."""
    path = settings.home / "review-secret"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
        os.write(handle, secrets.token_hex(32).encode())
        os.close(handle)
    return path.read_text().strip()


def create_app(settings: Settings, host: str = "127.0.0.1") -> Starlette:
    """The app for the store in ``settings``; refuses a non-loopback ``host`` while no reviewer exists."""
    store = ResultStore(settings.resolved_store_url)
    loopback = is_loopback(host)
    if not loopback and not has_reviewers(store):
        raise ConfigurationError(f"docintel review bound to {host} needs reviewers with passwords: add them with "
                                 "`docintel reviewers add NAME` (or bind to 127.0.0.1)")
    reviews = Reviews(store)
    limiter = LoginLimiter(settings.review_login_attempts, settings.review_login_window_s)
    templates = Environment(loader=PackageLoader("pipeline", "templates/review"),
                            autoescape=select_autoescape(default=True, default_for_string=True))

    @lru_cache(maxsize=8)
    def report(run_id: str) -> AuditReport:  # model output never changes: read once per run
        return report_for(store, store.run(run_id).run_id, settings)

    def page(request: Request, template: str, status_code: int = 200, **context) -> HTMLResponse:
        context |= {"reviewer": request.session.get("reviewer"), "csrf": request.session.get("csrf", ""),
                    "request": request}
        return HTMLResponse(templates.get_template(template).render(**context), status_code=status_code)

    async def form(request: Request) -> dict:
        data = await request.form()
        token = data.get("csrf") or request.headers.get("x-csrf-token", "")
        if not request.session.get("csrf") or not secrets.compare_digest(str(token), request.session["csrf"]):
            raise _Refused(403, "This form is out of date or did not come from this app (CSRF token). "
                                "Reload the page and try again.")
        return dict(data)

    def reviewer_of(request: Request) -> str:
        name = request.session.get("reviewer")
        if not name:
            raise _Refused(401, "Sign in first.")
        return name

    async def login(request: Request) -> Response:
        request.session.setdefault("csrf", secrets.token_urlsafe(32))
        if request.method == "GET":
            return page(request, "login.html", loopback=loopback, error=None)
        data = await form(request)
        name = str(data.get("name", "")).strip()[:80]
        key = (name, request.client.host if request.client else "?")
        if not name:
            return page(request, "login.html", 400, loopback=loopback, error="A reviewer name is needed.")
        if not loopback:
            if limiter.blocked(key):
                return page(request, "login.html", 429, loopback=loopback,
                            error="Too many failed sign-ins: wait a few minutes.")
            if not check_password(store, name, str(data.get("password", ""))):
                limiter.failed(key)
                return page(request, "login.html", 401, loopback=loopback, error="Wrong name or password.")
        request.session.clear()
        request.session.update(reviewer=name, csrf=secrets.token_urlsafe(32))
        return RedirectResponse("/", 303)

    async def logout(request: Request) -> Response:
        await form(request)
        request.session.clear()
        return RedirectResponse("/login", 303)

    async def runs(request: Request) -> Response:
        reviewer_of(request)
        return page(request, "runs.html", runs=store.runs())

    @lru_cache(maxsize=32)
    def ordered(run_id: str, order: str) -> list[Finding]:
        """The run's findings in ``order``, sorted once per run: model output never changes."""
        key = {"score": lambda f: (-f.score, f.document, f.page, f.start),
               "document": lambda f: (f.document, f.page, f.start)}.get(
            order, lambda f: (f.score, f.document, f.page, f.start))
        return sorted(report(run_id).findings, key=key)

    def queue_items(run_id: str, query) -> tuple[AuditReport, list[Finding], object]:
        """The queue's findings, filtered and in order; statuses are looked up, not built, for all of them
        (a run may hold 20,000)."""
        audit = report(run_id)
        review = reviews.review(audit)
        latest = review.latest

        def status(f: Finding) -> str:
            return latest[f.sentence_id].status_after if f.sentence_id in latest else "pending"

        items = ordered(run_id, query.get("sort", "uncertain")) + [i.finding for i in review.added]
        if label := query.get("label"):
            items = [f for f in items if f.label == label
                     or (f.sentence_id in latest and latest[f.sentence_id].label_after == label)]
        if document := query.get("document"):
            items = [f for f in items if f.document == document]
        if wanted := query.get("status"):
            items = [f for f in items if status(f) == wanted]
        if query.get("needs_review"):
            items = [f for f in items if f.needs_review]
        if band := query.get("band"):
            low, _, high = band.partition("-")
            items = [f for f in items if float(low) <= f.score < float(high or 1.01)]
        return audit, items, review

    async def queue(request: Request) -> Response:
        reviewer_of(request)
        run_id = request.path_params["run_id"]
        audit, items, review = queue_items(run_id, request.query_params)
        size = settings.review_page_size
        number = max(1, int(request.query_params.get("page", 1) or 1))
        pages = max(1, -(-len(items) // size))
        filters = {k: v for k, v in request.query_params.items() if k != "page" and v}
        shown = [FindingReview(f, review.latest.get(f.sentence_id)) for f in items[(number - 1) * size:number * size]]
        return page(request, "queue.html", report=audit, review=review, items=shown,
                    total=len(items), number=min(number, pages), pages=pages, filters=filters, statuses=STATUSES,
                    sorts=SORTS, documents=sorted({d.source for d in audit.documents if d.status == "done"}))

    def finding_page(request: Request, run_id: str, sentence_id: int, status_code: int = 200,
                     conflict=None, error: str | None = None) -> Response:
        audit, items, review = queue_items(run_id, {})
        item = review.item(sentence_id)
        if item is None:
            raise _Refused(404, f"Sentence {sentence_id} is not a finding of run {run_id}.")
        position = next(n for n, f in enumerate(items) if f.sentence_id == sentence_id)
        neighbours = (FindingReview(items[position - 1]) if position else None,
                      FindingReview(items[position + 1]) if position + 1 < len(items) else None)
        history = [row for row in review.trail if row.sentence_id == sentence_id]
        return page(request, "finding.html", status_code, report=audit, review=review, item=item,
                    previous=neighbours[0], next=neighbours[1], history=history, decisions=DECISIONS,
                    conflict=conflict, error=error)

    async def finding(request: Request) -> Response:
        reviewer = reviewer_of(request)
        run_id, sentence_id = request.path_params["run_id"], request.path_params["sentence_id"]
        if request.method == "GET":
            return finding_page(request, run_id, sentence_id)
        data = await form(request)
        action, _, label = str(data.get("action", "")).partition(":")  # relabel:<label> from its button
        try:
            reviews.decide(report(run_id), reviewer, sentence_id, action, label=label or None,
                           comment=str(data.get("comment", ""))[:4000], replaces=int(data.get("replaces") or 0))
        except StaleDecision as stale:
            return finding_page(request, run_id, sentence_id, 409, conflict=stale.current)
        except ReviewError as exc:
            return finding_page(request, run_id, sentence_id, 400, error=str(exc))
        latest = reviews.review(report(run_id)).latest
        after = next((f for f in ordered(run_id, "uncertain") if f.sentence_id not in latest), None)  # next pending
        target = f"/runs/{run_id}/findings/{after.sentence_id}" if after else f"/runs/{run_id}"
        return RedirectResponse(target, 303)

    async def finding_image(request: Request) -> Response:
        """The finding's page (a PDF or scan) with its sentence highlighted, rendered from the source file."""
        reviewer_of(request)
        from pipeline.analysis import input_limits
        from pipeline.reports.pages import highlighted

        run_id, sentence_id, number = (request.path_params[k] for k in ("run_id", "sentence_id", "page"))
        finding = next((f for f in report(run_id).findings if f.sentence_id == sentence_id), None)
        boxes = [box[1:] for box in (finding.boxes if finding else ()) if box[0] == number]
        if not boxes:
            raise _Refused(404, f"Sentence {sentence_id} of run {run_id} has no place on page {number}.")
        try:
            jpeg = await run_in_threadpool(highlighted, store, input_limits(settings), finding.doc_id, number, boxes)
        except DocintelError as exc:
            raise _Refused(404, f"The page cannot be shown: {exc}") from exc
        return Response(jpeg, media_type="image/jpeg")

    async def search(request: Request) -> Response:
        reviewer_of(request)
        from pipeline.search import search as semantic_search

        run_id, text = request.path_params["run_id"], request.query_params.get("q", "").strip()
        audit = report(run_id)
        hits = semantic_search(store, text, models_dir=settings.models_dir, run_id=run_id, top=20,
                               device=settings.device) if text else []
        known = {f.sentence_id for f in audit.findings}
        return page(request, "search.html", report=audit, query=text, hits=hits, known=known)

    async def add(request: Request) -> Response:
        reviewer = reviewer_of(request)
        run_id = request.path_params["run_id"]
        data = await form(request)
        sentence_id = int(data.get("sentence_id") or 0)
        try:
            reviews.decide(report(run_id), reviewer, sentence_id, "add", label=data.get("label") or None,
                           comment=str(data.get("comment", ""))[:4000], replaces=int(data.get("replaces") or 0),
                           model_label=data.get("model_label") or None)
        except ReviewError as exc:
            raise _Refused(409 if isinstance(exc, StaleDecision) else 400, str(exc)) from exc
        return RedirectResponse(f"/runs/{run_id}/findings/{sentence_id}", 303)

    async def signoff(request: Request) -> Response:
        reviewer = reviewer_of(request)
        run_id = request.path_params["run_id"]
        data = await form(request)
        try:
            if request.url.path.endswith("/reopen"):
                reviews.reopen(report(run_id), reviewer, str(data.get("comment", ""))[:4000])
            else:
                reviews.sign_off(report(run_id), reviewer, str(data.get("comment", ""))[:4000])
        except ReviewError as exc:
            raise _Refused(409, str(exc)) from exc
        return RedirectResponse(f"/runs/{run_id}", 303)

    async def export_report(request: Request) -> Response:
        reviewer_of(request)
        from pipeline.reports.exports import FORMATS, export

        run_id, fmt = request.path_params["run_id"], request.path_params["fmt"]
        if fmt not in FORMATS:
            raise _Refused(404, f"No {fmt} export: use one of {', '.join(FORMATS)}.")
        folder = Path(tempfile.mkdtemp(prefix="docintel-review-export-"))
        audit = report(run_id)
        if fmt == "html" and settings.report_page_images:
            from pipeline.analysis import input_limits
            from pipeline.reports.pages import with_page_images

            audit = await run_in_threadpool(with_page_images, audit, store, input_limits(settings),
                                            settings.report_page_images)
        written = export(reviewed_report(store, audit), folder, (fmt,))
        if not written.written:
            raise _Refused(500, f"The {fmt} report could not be written: {written.failed.get(fmt)}")
        path = written.written[0]
        return FileResponse(path, filename=f"docintel-{run_id}-reviewed{path.suffix}")

    async def refused(request: Request, exc: Exception) -> Response:
        if isinstance(exc, _Refused) and exc.status == 401:
            return RedirectResponse("/login", 303)
        status, message = (exc.status, exc.message) if isinstance(exc, _Refused) else (400, str(exc))
        return page(request, "message.html", status, message=message)

    routes = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", runs),
        Route("/runs/{run_id}", queue),
        Route("/runs/{run_id}/findings/{sentence_id:int}", finding, methods=["GET", "POST"]),
        Route("/runs/{run_id}/findings/{sentence_id:int}/page/{page:int}.jpg", finding_image),
        Route("/runs/{run_id}/search", search),
        Route("/runs/{run_id}/add", add, methods=["POST"]),
        Route("/runs/{run_id}/signoff", signoff, methods=["POST"]),
        Route("/runs/{run_id}/reopen", signoff, methods=["POST"]),
        Route("/runs/{run_id}/export/{fmt}", export_report),
        Mount("/static", StaticFiles(directory=HERE / "static" / "review"), name="static"),
    ]
    return Starlette(routes=routes, exception_handlers={_Refused: refused, ConfigurationError: refused},
                     middleware=[Middleware(SecurityHeaders),
                                 Middleware(SessionMiddleware, secret_key=_secret(settings), session_cookie="docintel_review",
                                            same_site="strict", https_only=not loopback, max_age=12 * 3600)])


class SecurityHeaders:
    """Every response: the Content-Security-Policy and the headers that keep pages out of frames and caches."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
               (b"referrer-policy", b"no-referrer"), (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message
