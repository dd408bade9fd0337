"""The pages a problem's ``type`` URI resolves to: what happened and how to fix it, in English and Chinese.

Public (a client that got the problem may not be able to sign a request), static text from
``core.problem_catalogue``, no script. ``/problems`` lists every code; ``/problems.json`` is the same
catalogue for tools. Both languages are on every page; ``Accept-Language: zh`` puts Chinese first.
"""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from ledger_api.core.problem_catalogue import CATALOGUE, ProblemType
from ledger_api.errors import NotFound

router = APIRouter(include_in_schema=False)
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "public, max-age=3600",
    "Vary": "Accept-Language",
}
STYLE = (
    "body{font-family:system-ui,'Noto Sans CJK SC',sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5}code{background:#f3f3f3;padding:0 .2rem}section{margin-bottom:1.5rem}"
)


def _chinese_first(request: Request) -> bool:
    accepted = request.headers.get("accept-language", "").lower()
    return accepted.startswith("zh")


def _section(code: str, entry: ProblemType, language: str) -> str:
    if language == "zh":
        title, what, fix, labels = entry.title_zh, entry.what_zh, entry.fix_zh, ("发生了什么", "如何解决")
    else:
        title, what, fix, labels = entry.title, entry.what, entry.fix, ("What happened", "How to fix it")
    return (
        f'<section lang="{language}"><h2>{escape(title)}</h2>'
        f"<h3>{labels[0]}</h3><p>{escape(what)}</p><h3>{labels[1]}</h3><p>{escape(fix)}</p></section>"
    )


@router.get("/problems/{code}", response_class=HTMLResponse)
def problem_page(code: str, request: Request) -> HTMLResponse:
    entry = CATALOGUE.get(code)
    if entry is None:
        raise NotFound(f"no problem type {code!r}; GET /problems lists them", code="not-found")
    order = ("zh", "en") if _chinese_first(request) else ("en", "zh")
    body = "".join(_section(code, entry, language) for language in order)
    page = (
        f'<!doctype html><html lang="{order[0]}"><head><meta charset="utf-8"><title>{escape(code)} — MedLedger'
        f"</title><style>{STYLE}</style></head><body><h1><code>{escape(code)}</code> · HTTP {entry.status}</h1>"
        f'{body}<p><a href="/problems">All problem types · 全部问题类型</a></p></body></html>'
    )
    return HTMLResponse(page, headers=HEADERS)


@router.get("/problems", response_class=HTMLResponse)
def problem_index() -> HTMLResponse:
    rows = "".join(
        f'<tr><td><a href="/problems/{escape(c)}"><code>{escape(c)}</code></a></td><td>{e.status}</td>'
        f'<td>{escape(e.title)}</td><td lang="zh">{escape(e.title_zh)}</td></tr>'
        for c, e in sorted(CATALOGUE.items(), key=lambda item: (item[1].status, item[0]))
    )
    page = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>MedLedger problem types</title>'
        f"<style>{STYLE}</style></head><body><h1>MedLedger problem types · 问题类型</h1>"
        "<p>400: the request cannot be read (syntax). 422: a value in it is not acceptable (<code>field</code> "
        'names it).</p><p lang="zh">400：请求无法读取（语法错误）。422：请求中的某个值不可接受（由 '
        "<code>field</code> 指出）。</p>"
        f"<table><tr><th>code</th><th>HTTP</th><th>English</th><th>中文</th></tr>{rows}</table></body></html>"
    )
    return HTMLResponse(page, headers=HEADERS)


@router.get("/problems.json")
def problem_catalogue() -> JSONResponse:
    return JSONResponse(
        {
            code: {
                "status": e.status,
                "title": e.title,
                "what": e.what,
                "fix": e.fix,
                "title_zh": e.title_zh,
                "what_zh": e.what_zh,
                "fix_zh": e.fix_zh,
            }
            for code, e in CATALOGUE.items()
        }
    )
