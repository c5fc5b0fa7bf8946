"""Static HTML previews of chat cards (Teams Adaptive Cards and Slack Block Kit).

The renderers are deliberately approximate: they aim at a readable, safe preview of
what a webhook payload will show, not a pixel-perfect copy of Teams or Slack.

* ``render_teams_html(payload)`` renders a Teams Workflows webhook message whose
  attachments hold Adaptive Cards 1.5 (including the Teams ``Chart.*`` elements).
* ``render_slack_html(payload)`` renders a Slack incoming-webhook message (Block Kit).
* ``render_page(title, sections)`` wraps fragments into one standalone document with
  inline CSS, no JavaScript and no external resources (images are shown as alt text).

Every text and URL is HTML-escaped; only http(s) URLs become links.
Standard library only.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable

GREY = "#8a8886"
CHART_COLORS = {
    "good": "#13a10e",
    "warning": "#ffb900",
    "attention": "#d13438",
    "neutral": GREY,
    "categoricalred": "#d13438",
    "categoricalpurple": "#8764b8",
    "categoricallavender": "#b4a0ff",
    "categoricalblue": "#0078d4",
    "categoricallightblue": "#4fa3e0",
    "categoricalteal": "#038387",
    "categoricalgreen": "#13a10e",
    "categoricallime": "#8cbd18",
    "categoricalmarigold": "#eaa300",
    "sequential1": "#c7e0f4",
    "sequential2": "#a0cbed",
    "sequential3": "#71afe5",
    "sequential4": "#2b88d8",
    "sequential5": "#0078d4",
    "sequential6": "#106ebe",
    "sequential7": "#005a9e",
    "sequential8": "#004578",
    "divergingblue": "#005a9e",
    "divergingred": "#a4262c",
    "divergingyellow": "#ffb900",
    "diverginggray": GREY,
    "diverginggreen": "#107c10",
}
SERIES_PALETTE = ("#0078d4", "#d13438", "#13a10e", "#8764b8", "#eaa300", "#038387")
_HEX_COLOR = re.compile(r"#[0-9a-fA-F]{3,8}")
_PLACEHOLDER = re.compile("\x00(\\d+)\x00")


# ---------------------------------------------------------------- generic helpers
def _esc(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def _list(value: object) -> list:
    return value if isinstance(value, list) else []


def _dicts(value: object) -> list[dict]:
    return [item for item in _list(value) if isinstance(item, dict)]


def _num(value: object) -> float | None:
    """A finite float, or None for anything else (bools, text, NaN, inf)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _fmt(value: float | None) -> str:
    if value is None:
        return "–"
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def _safe_url(url: object) -> str | None:
    if isinstance(url, str) and url.strip().lower().startswith(("http://", "https://")):
        return url.strip()
    return None


def _link(url: object, inner_html: str, css: str = "") -> str:
    """An <a> for http(s) URLs; otherwise the text plus the (escaped) URL as plain text."""
    safe = _safe_url(url)
    cls = f' class="{css}"' if css else ""
    if safe:
        return f'<a{cls} href="{_esc(safe)}" target="_blank" rel="noopener noreferrer">{inner_html}</a>'
    suffix = f' <span class="muted">({_esc(url)})</span>' if url else ""
    return f"<span{cls}>{inner_html}</span>{suffix}"


def _color(name: object, default: str = GREY) -> str:
    if name is None:
        return default
    if isinstance(name, str) and _HEX_COLOR.fullmatch(name):
        return name
    return CHART_COLORS.get(str(name).lower(), GREY)


def _note(kind: object) -> str:
    return f'<span class="note">[unsupported: {_esc(kind)}]</span>'


def _format_text(
    text: object, tokens: re.Pattern, token_html: Callable, prepare: Callable, inline: Iterable[tuple[re.Pattern, str]]
) -> str:
    """Escape text, rendering `tokens` matches via token_html and inline styles via regexes."""
    stash: list[str] = []

    def keep(match: re.Match) -> str:
        stash.append(token_html(match))
        return f"\x00{len(stash) - 1}\x00"

    body = _esc(prepare(tokens.sub(keep, str(text or "").replace("\x00", ""))))
    for pattern, tag in inline:
        body = pattern.sub(rf"<{tag}>\1</{tag}>", body)
    body = _PLACEHOLDER.sub(lambda m: stash[int(m.group(1))], body)
    return body.replace("\n", "<br>")


# ---------------------------------------------------------------- Adaptive Card markdown
_AC_LINK = re.compile(r"\[([^\]\n]+)\]\(([^)\s]+)\)")
_AC_INLINE = (
    (re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*"), "strong"),
    (re.compile(r"(?<![\w*])_(?=\S)(.+?)(?<=\S)_(?!\w)"), "em"),
)


def _ac_markdown(text: object) -> str:
    def link(m: re.Match) -> str:
        return _link(m.group(2), _format_text(m.group(1), _AC_LINK, _esc, str, _AC_INLINE))

    return _format_text(text, _AC_LINK, link, str, _AC_INLINE)


# ---------------------------------------------------------------- Adaptive Card elements
def _text_block(el: dict) -> str:
    classes = [
        "tb",
        f"size-{str(el.get('size') or 'default').lower()}",
        f"color-{str(el.get('color') or 'default').lower()}",
    ]
    if str(el.get("weight", "")).lower() == "bolder":
        classes.append("bold")
    if el.get("isSubtle"):
        classes.append("subtle")
    if not el.get("wrap"):
        classes.append("nowrap")
    return f'<div class="{_esc(" ".join(classes))}">{_ac_markdown(el.get("text"))}</div>'


def _text_run(run: object) -> str:
    if not isinstance(run, dict):
        return _esc(run)
    if run.get("type", "TextRun") != "TextRun":
        return _note(run.get("type"))
    out = _esc(run.get("text"))
    for flag, tag in (("italic", "em"), ("strikethrough", "del"), ("highlight", "mark")):
        if run.get(flag):
            out = f"<{tag}>{out}</{tag}>"
    if str(run.get("weight", "")).lower() == "bolder":
        out = f"<strong>{out}</strong>"
    color = f"color-{str(run.get('color') or 'default').lower()}"
    subtle = " subtle" if run.get("isSubtle") else ""
    return f'<span class="{_esc(color)}{subtle}">{out}</span>'


def _rich_text_block(el: dict) -> str:
    return f'<div class="tb">{"".join(_text_run(r) for r in _list(el.get("inlines")))}</div>'


def _fact_set(el: dict) -> str:
    rows = "".join(
        f"<tr><th>{_ac_markdown(f.get('title'))}</th><td>{_ac_markdown(f.get('value'))}</td></tr>"
        for f in _dicts(el.get("facts"))
    )
    return f'<table class="facts">{rows}</table>'


def _items(items: object) -> str:
    return "".join(_element(item) for item in _dicts(items))


def _style_class(el: dict) -> str:
    return f" style-{_esc(str(el['style']).lower())}" if el.get("style") else ""


def _container(el: dict) -> str:
    return f'<div class="container{_style_class(el)}">{_items(el.get("items"))}</div>'


def _column_flex(width: object) -> str:
    if width == "auto":
        return "0 0 auto"
    if isinstance(width, str) and re.fullmatch(r"\d+px", width):
        return f"0 0 {width}"
    if isinstance(width, str) and width.isdigit():
        width = int(width)
    weight = _num(width)
    return f"{weight:g} 1 0" if weight and weight > 0 else "1 1 0"


def _column_set(el: dict) -> str:
    cols = "".join(
        f'<div class="column{_style_class(c)}" style="flex:{_column_flex(c.get("width"))}">'
        f"{_items(c.get('items'))}</div>"
        for c in _dicts(el.get("columns"))
    )
    return f'<div class="columns{_style_class(el)}">{cols}</div>'


def _table(el: dict) -> str:
    header = el.get("firstRowAsHeader", True)
    rows = []
    for index, row in enumerate(_dicts(el.get("rows"))):
        tag = "th" if header and index == 0 else "td"
        cells = "".join(f"<{tag}>{_items(c.get('items'))}</{tag}>" for c in _dicts(row.get("cells")))
        rows.append(f"<tr>{cells}</tr>")
    return f'<table class="grid">{"".join(rows)}</table>'


def _image(el: dict) -> str:
    return f'<span class="img">[image: {_esc(el.get("altText") or "no alt text")}]</span>'


def _action(action: dict) -> str:
    kind = action.get("type")
    title = _esc(action.get("title") or action.get("url") or kind)
    if kind == "Action.OpenUrl":
        return _link(action.get("url"), title, "button")
    if kind in ("Action.Submit", "Action.Execute", "Action.ShowCard", "Action.ToggleVisibility"):
        return f'<span class="button disabled" title="{_esc(kind)}">{title}</span>'
    return _with_fallback(action, _action)


def _actions(actions: object) -> str:
    return f'<div class="actions">{"".join(_action(a) for a in _dicts(actions))}</div>'


# ---------------------------------------------------------------- Teams charts
def _caption(text: object, css: str) -> str:
    return f'<div class="{css}">{_esc(text)}</div>' if text else ""


def _chart_title(el: dict) -> str:
    return _caption(el.get("title"), "chart-title")


def _legend(entries: Iterable[tuple[object, str]]) -> str:
    spans = "".join(
        f'<span><span class="swatch" style="background:{_esc(color)}"></span>{_esc(label)}</span>'
        for label, color in entries
        if label
    )
    return f'<div class="legend">{spans}</div>' if spans else ""


def _svg_text(x: float, y: float, text: object, anchor: str = "start", css: str = "axis") -> str:
    return f'<text class="{css}" x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}">{_esc(text)}</text>'


def _chart_line(el: dict) -> str:
    series = _dicts(el.get("data"))
    points = [[(p.get("x"), _num(p.get("y"))) for p in _dicts(s.get("values"))] for s in series]
    points = [[(x, y) for x, y in pts if y is not None] for pts in points]
    xs = [x for pts in points for x, _ in pts]
    if not xs:
        return f'<div class="chart">{_chart_title(el)}<span class="note">no data</span></div>'
    numeric = all(_num(x) is not None for x in xs)
    categories = {str(x): i for i, x in enumerate(dict.fromkeys(str(x) for x in xs))}
    pos = [float(x) if numeric else float(categories[str(x)]) for x in xs]
    ys = [y for pts in points for _, y in pts]
    x_lo, x_hi, y_lo, y_hi = min(pos), max(pos), min(ys), max(ys)
    x_span, y_span = (x_hi - x_lo) or 1.0, (y_hi - y_lo) or 1.0
    width, height, left, top, plot_w, plot_h = 480, 190, 60, 10, 410, 150

    def xy(x: object, y: float) -> str:
        px = float(x) if numeric else float(categories[str(x)])
        return f"{left + (px - x_lo) / x_span * plot_w:.1f},{top + (1 - (y - y_lo) / y_span) * plot_h:.1f}"

    colors = [_color(s.get("color"), SERIES_PALETTE[i % len(SERIES_PALETTE)]) for i, s in enumerate(series)]
    lines = "".join(
        f'<polyline class="series" fill="none" stroke="{_esc(c)}" stroke-width="2" '
        f'points="{" ".join(xy(x, y) for x, y in pts)}"/>'
        for pts, c in zip(points, colors, strict=True)
    )
    first, last = (_fmt(x_lo), _fmt(x_hi)) if numeric else (next(iter(categories)), list(categories)[-1])
    bottom = top + plot_h
    svg = (
        f'<svg class="line-chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f'<path class="axes" d="M{left} {top}V{bottom}H{left + plot_w}" fill="none" stroke="{GREY}"/>'
        f"{lines}{_svg_text(left - 4, top + 10, _fmt(y_hi), 'end')}"
        f"{_svg_text(left - 4, bottom, _fmt(y_lo), 'end')}"
        f"{_svg_text(left, bottom + 16, first)}{_svg_text(left + plot_w, bottom + 16, last, 'end')}</svg>"
    )
    y_title = _caption(el.get("yAxisTitle"), "axis-title")
    x_title = _caption(el.get("xAxisTitle"), "axis-title center")
    legend = _legend((s.get("legend"), c) for s, c in zip(series, colors, strict=True))
    return f'<div class="chart">{_chart_title(el)}{y_title}{svg}{x_title}{legend}</div>'


def _chart_hbar(el: dict) -> str:
    items = [(d.get("x"), _num(d.get("y")), _color(d.get("color"), SERIES_PALETTE[0])) for d in _dicts(el.get("data"))]
    largest = max((y for _, y, _ in items if y is not None and y > 0), default=0.0)
    rows = []
    for label, y, color in items:
        pct = max(y, 0.0) / largest * 100 if largest and y is not None else 0.0
        rows.append(
            f'<div class="hbar-row"><span class="hbar-label">{_esc(label)}</span>'
            f'<span class="hbar-track"><span class="hbar" style="width:{pct:.1f}%;'
            f'background:{_esc(color)}"></span></span>'
            f'<span class="hbar-value">{_fmt(y)}</span></div>'
        )
    return f'<div class="chart">{_chart_title(el)}{"".join(rows)}</div>'


def _arc_point(fraction: float, radius: float, cx: float = 100, cy: float = 100) -> tuple[float, float]:
    angle = math.pi * (1 - min(max(fraction, 0.0), 1.0))
    return cx + radius * math.cos(angle), cy - radius * math.sin(angle)


def _arc(start: float, end: float, color: str, css: str, radius: float = 80) -> str:
    (x1, y1), (x2, y2) = _arc_point(start, radius), _arc_point(end, radius)
    return (
        f'<path class="{css}" d="M{x1:.1f} {y1:.1f}A{radius} {radius} 0 0 1 {x2:.1f} {y2:.1f}" '
        f'fill="none" stroke="{_esc(color)}" stroke-width="16"/>'
    )


def _gauge_text(el: dict, lo: float, hi: float, value: float | None) -> str:
    if value is None:
        return "–"
    if el.get("valueFormat") == "Fraction":
        return f"{_fmt(value)}/{_fmt(hi)}"
    return f"{round((value - lo) / (hi - lo) * 100)}%"


def _chart_gauge(el: dict) -> str:
    lo = _num(el.get("min")) or 0.0
    hi = _num(el.get("max"))
    hi = hi if hi is not None and hi > lo else lo + 100
    value = _num(el.get("value"))

    def frac(v: float) -> float:
        return (v - lo) / (hi - lo)

    segments = [(s, _num(s.get("from")), _num(s.get("to"))) for s in _dicts(el.get("segments"))]
    segments = [(s, a, b) for s, a, b in segments if a is not None and b is not None and b > a]
    parts = [_arc(0, 1, "#edebe9", "track")]
    parts += [_arc(frac(a), frac(b), _color(s.get("color")), "seg") for s, a, b in segments]
    if value is not None:
        (x1, y1), (x2, y2) = _arc_point(frac(value), 64), _arc_point(frac(value), 96)
        parts.append(
            f'<line class="marker" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
            'stroke="#201f1e" stroke-width="3"/>'
        )
    parts.append(_svg_text(100, 92, _gauge_text(el, lo, hi, value), "middle", "gauge-value"))
    parts.append(_svg_text(100, 114, el.get("subLabel") or "", "middle"))
    svg = f'<svg class="gauge" viewBox="0 0 200 120" width="240" height="144">{"".join(parts)}</svg>'
    legend = _legend((s.get("legend"), _color(s.get("color"))) for s, _, _ in segments)
    return f'<div class="chart">{_chart_title(el)}{svg}{legend}</div>'


ELEMENTS: dict[str, Callable[[dict], str]] = {
    "TextBlock": _text_block,
    "RichTextBlock": _rich_text_block,
    "FactSet": _fact_set,
    "Container": _container,
    "ColumnSet": _column_set,
    "Table": _table,
    "Image": _image,
    "ActionSet": lambda el: _actions(el.get("actions")),
    "Chart.Line": _chart_line,
    "Chart.HorizontalBar": _chart_hbar,
    "Chart.Gauge": _chart_gauge,
}


def _with_fallback(el: dict, render: Callable[[dict], str]) -> str:
    fallback = el.get("fallback")
    if isinstance(fallback, dict):
        return render(fallback)
    return "" if fallback == "drop" else _note(el.get("type"))


def _element(el: dict) -> str:
    if el.get("isVisible") is False:
        return ""
    handler = ELEMENTS.get(str(el.get("type")))
    body = handler(el) if handler else _with_fallback(el, _element)
    return f'<hr class="sep">{body}' if el.get("separator") else body


def render_teams_html(payload: dict) -> str:
    """Render a Teams Workflows webhook message (Adaptive Card attachments) to an HTML fragment."""
    cards = [payload] if payload.get("type") == "AdaptiveCard" else []
    parts = []
    for attachment in _dicts(payload.get("attachments")):
        if attachment.get("contentType") == "application/vnd.microsoft.card.adaptive":
            cards.append(attachment.get("content") if isinstance(attachment.get("content"), dict) else {})
        else:
            parts.append(_note(attachment.get("contentType")))
    for card in cards:
        actions = _actions(card["actions"]) if _dicts(card.get("actions")) else ""
        parts.append(f"{_items(card.get('body'))}{actions}")
    return f'<div class="card teams">{"".join(parts)}</div>'


# ---------------------------------------------------------------- Slack Block Kit
_SLACK_TOKEN = re.compile(r"<([^<>\n]+)>|`([^`\n]+)`")
_SLACK_INLINE = (
    (re.compile(r"(?<![\w*])\*(?=\S)(.+?)(?<=\S)\*(?![\w*])"), "strong"),
    (re.compile(r"(?<![\w_])_(?=\S)(.+?)(?<=\S)_(?![\w_])"), "em"),
    (re.compile(r"(?<![\w~])~(?=\S)(.+?)(?<=\S)~(?![\w~])"), "del"),
)


def _slack_unescape(text: str) -> str:
    """Slack senders escape &, < and > as entities; turn them back into characters."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _slack_token(match: re.Match) -> str:
    if match.group(2) is not None:
        return f"<code>{_esc(_slack_unescape(match.group(2)))}</code>"
    target, _, label = match.group(1).partition("|")
    label = _slack_unescape(label)
    if target[:1] in ("@", "#", "!"):
        return f'<span class="mention">{_esc(label or target)}</span>'
    if _safe_url(target):
        return _link(target, _esc(label or target))
    return _esc(f"<{match.group(1)}>")


def _mrkdwn(text: object) -> str:
    return _format_text(text, _SLACK_TOKEN, _slack_token, _slack_unescape, _SLACK_INLINE)


def _slack_text(obj: object) -> str:
    if isinstance(obj, dict):
        text = obj.get("text")
        return _mrkdwn(text) if obj.get("type") == "mrkdwn" else _esc(text).replace("\n", "<br>")
    return _mrkdwn(obj) if isinstance(obj, str) else ""


def _slack_element(el: dict) -> str:
    kind = el.get("type")
    if kind == "button":
        css = f"button {_esc(el.get('style') or '')}".strip()
        if el.get("url"):
            return _link(el.get("url"), _slack_text(el.get("text")), css)
        return f'<span class="{css} disabled">{_slack_text(el.get("text"))}</span>'
    if kind == "image":
        return f'<span class="img">[image: {_esc(el.get("alt_text") or "no alt text")}]</span>'
    if kind in ("mrkdwn", "plain_text"):
        return _slack_text(el)
    return _note(kind)


def _slack_section(block: dict) -> str:
    text = f'<div class="tb">{_slack_text(block.get("text"))}</div>' if block.get("text") else ""
    fields = "".join(f"<div>{_slack_text(f)}</div>" for f in _list(block.get("fields")))
    fields = f'<div class="fields">{fields}</div>' if fields else ""
    accessory = block.get("accessory")
    side = f'<div class="accessory">{_slack_element(accessory)}</div>' if isinstance(accessory, dict) else ""
    return f'<div class="section">{text}{fields}</div>{side}'


def _rt_inline(el: dict) -> str:
    kind = el.get("type")
    style = el.get("style") if isinstance(el.get("style"), dict) else {}
    if kind == "link":
        return _link(el.get("url"), _esc(el.get("text") or el.get("url")))
    names = {"emoji": ":{}:", "user": "@{}", "channel": "#{}", "usergroup": "@{}", "broadcast": "@{}"}
    keys = {
        "emoji": "name",
        "user": "user_id",
        "channel": "channel_id",
        "usergroup": "usergroup_id",
        "broadcast": "range",
    }
    if kind in names:
        return _esc(names[kind].format(el.get(keys[kind], "")))
    out = _esc(el.get("text")).replace("\n", "<br>")
    for flag, tag in (("code", "code"), ("strike", "del"), ("italic", "em"), ("bold", "strong")):
        if style.get(flag):
            out = f"<{tag}>{out}</{tag}>"
    return out


def _rich_text(block: dict) -> str:
    out = []
    for part in _dicts(block.get("elements")):
        kind, inner = part.get("type"), "".join(_rt_inline(e) for e in _dicts(part.get("elements")))
        if kind == "rich_text_list":
            tag = "ol" if part.get("style") == "ordered" else "ul"
            items = "".join(f"<li>{_rich_text({'elements': [item]})}</li>" for item in _dicts(part.get("elements")))
            out.append(f"<{tag}>{items}</{tag}>")
        else:
            tag = {"rich_text_quote": "blockquote", "rich_text_preformatted": "pre"}.get(kind, "div")
            out.append(f"<{tag}>{inner}</{tag}>")
    return f'<div class="tb">{"".join(out)}</div>'


def _slack_block(block: dict) -> str:
    kind = block.get("type")
    if kind == "header":
        return f'<div class="tb size-large bold">{_esc((block.get("text") or {}).get("text"))}</div>'
    if kind == "section":
        return f'<div class="slack-section">{_slack_section(block)}</div>'
    elements = [_slack_element(e) for e in _dicts(block.get("elements"))]
    if kind == "context":
        return f'<div class="tb subtle size-small">{" ".join(elements)}</div>'
    if kind == "divider":
        return '<hr class="sep">'
    if kind == "actions":
        return f'<div class="actions">{"".join(elements)}</div>'
    if kind == "image":
        title = _slack_text(block.get("title"))
        return f"<div>{_slack_element({'type': 'image', 'alt_text': block.get('alt_text')})} {title}</div>"
    if kind == "rich_text":
        return _rich_text(block)
    return _note(kind)


def render_slack_html(payload: dict) -> str:
    """Render a Slack incoming-webhook message (``text`` + Block Kit ``blocks``) to an HTML fragment."""
    blocks = _dicts(payload.get("blocks"))
    if not blocks:
        return f'<div class="card slack"><div class="tb">{_mrkdwn(payload.get("text"))}</div></div>'
    text = payload.get("text")
    notification = f'<div class="notif">Notification: {_mrkdwn(text)}</div>' if text else ""
    return f'<div class="card slack">{notification}{"".join(_slack_block(b) for b in blocks)}</div>'


# ---------------------------------------------------------------- page
CSS = """
body{font:14px/1.4 "Segoe UI",system-ui,sans-serif;background:#f3f2f1;color:#201f1e;margin:24px}
h1{font-size:20px}h2{font-size:16px;margin:24px 0 8px}
.card{background:#fff;border:1px solid #e1dfdd;border-radius:8px;padding:12px 16px;max-width:760px}
.card>*+*{margin-top:8px}.tb{overflow-wrap:anywhere}.nowrap{white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.size-small{font-size:12px}.size-medium{font-size:16px}.size-large{font-size:19px}.size-extralarge{font-size:24px}
.bold{font-weight:600}.subtle,.muted,.axis-title,.notif{color:#605e5c}.axis-title{font-size:12px}.center{text-align:center}
.color-good{color:#107c10}.color-warning{color:#986f0b}.color-attention{color:#c4314b}.color-accent{color:#0f6cbd}
.note{color:#8a8886;font-size:12px}.img{color:#605e5c;font-style:italic}
.container,.column{padding:4px 0}.style-emphasis{background:#f5f5f5;padding:8px}
.style-good{background:#dff6dd;padding:8px}.style-attention{background:#fde7e9;padding:8px}
.style-warning{background:#fff4ce;padding:8px}.style-accent{background:#deecf9;padding:8px}
.columns{display:flex;gap:12px}.column{min-width:0}
table{border-collapse:collapse}.facts th{text-align:left;padding:2px 12px 2px 0;font-weight:600}
.grid td,.grid th{border:1px solid #e1dfdd;padding:4px 8px;text-align:left;vertical-align:top}
.actions{display:flex;gap:8px;flex-wrap:wrap;margin-top:8px}
.button{display:inline-block;border:1px solid #8a8886;border-radius:4px;padding:4px 12px;text-decoration:none}
.button.primary{background:#007a5a;color:#fff}.button.danger{background:#e01e5a;color:#fff}.disabled{opacity:.7}
.sep{border:0;border-top:1px solid #e1dfdd}.chart-title{font-weight:600}.axis{font-size:11px;fill:#605e5c}
.gauge-value{font-size:22px;font-weight:600}.legend span{margin-right:12px;font-size:12px}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}
.hbar-row{display:grid;grid-template-columns:minmax(6em,30%) 1fr auto;gap:8px;align-items:center}
.hbar-track{background:#f3f2f1;height:12px}.hbar{display:block;height:12px}
.slack-section{display:flex;gap:12px;justify-content:space-between}
.fields{display:grid;grid-template-columns:1fr 1fr;gap:4px 16px}.mention{color:#1264a3}
code{background:#f3f2f1;padding:0 3px}blockquote{border-left:3px solid #ddd;margin:0;padding-left:8px}
"""


def render_page(title: str, sections: list[tuple[str, str]]) -> str:
    """A standalone HTML document (inline CSS, no scripts) with each (heading, fragment) in turn."""
    body = "".join(f"<section><h2>{_esc(heading)}</h2>{fragment}</section>" for heading, fragment in sections)
    csp = "default-src 'none'; style-src 'unsafe-inline'"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{_esc(title)}</h1>{body}</body></html>\n"
    )
