"""Unit tests for finops_guard.core.preview (static HTML previews of Teams and Slack cards)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from finops_guard.core.preview import render_page, render_slack_html, render_teams_html


# ---------------------------------------------------------------- helpers
def teams(*body: dict, actions: list | None = None) -> dict:
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.5",
        "msteams": {"width": "Full"},
        "body": list(body),
    }
    if actions is not None:
        card["actions"] = actions
    return {
        "type": "message",
        "attachments": [
            {"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None, "content": card}
        ],
    }


def text_block(text: str, **extra) -> dict:
    return {"type": "TextBlock", "text": text, "wrap": True, **extra}


def hrefs(fragment: str) -> list[str]:
    return re.findall(r'<a [^>]*href="([^"]*)"', fragment)


def polyline_points(fragment: str) -> list[list[str]]:
    return [p.split() for p in re.findall(r'<polyline [^>]*points="([^"]*)"', fragment)]


class TagCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.append(tag)


def start_tags(fragment: str) -> list[str]:
    parser = TagCollector()
    parser.feed(fragment)
    return parser.tags


LINE = {
    "type": "Chart.Line",
    "title": "Daily cost",
    "xAxisTitle": "Day",
    "yAxisTitle": "USD",
    "data": [
        {
            "legend": "Total",
            "color": "categoricalBlue",
            "values": [{"x": f"2024-05-{day:02d}", "y": 10.0 + day} for day in range(1, 15)],
        }
    ],
}
GAUGE = {
    "type": "Chart.Gauge",
    "title": "Budget used",
    "subLabel": "of monthly budget",
    "min": 0,
    "max": 100,
    "value": 87,
    "valueFormat": "Percentage",
    "segments": [
        {"from": 0, "to": 80, "color": "good", "legend": "On track"},
        {"from": 80, "to": 95, "color": "warning"},
        {"from": 95, "to": 100, "color": "attention"},
    ],
}


# ---------------------------------------------------------------- Teams: text and layout
def test_factset_renders_every_title_and_value():
    # Given a FactSet with three facts
    facts = [
        {"title": "Total", "value": "$1,234.56"},
        {"title": "Change", "value": "+12%"},
        {"title": "Account", "value": "prod-payments"},
    ]
    # When it is rendered
    html = render_teams_html(teams({"type": "FactSet", "facts": facts}))
    # Then every title and value appears, one table row each
    for fact in facts:
        assert f"<th>{fact['title']}</th><td>{fact['value']}</td>" in html
    assert html.count("<tr>") == 3


def test_textblock_markdown_renders_bold_italic_and_link():
    # Given a TextBlock using the supported markdown subset
    block = text_block("**Total** is _up_ see [Cost Explorer](https://console.aws.amazon.com/ce)")
    # When rendered
    html = render_teams_html(teams(block))
    # Then bold, italic and the link become HTML
    assert "<strong>Total</strong>" in html
    assert "<em>up</em>" in html
    assert hrefs(html) == ["https://console.aws.amazon.com/ce"]
    assert ">Cost Explorer</a>" in html


def test_textblock_underscores_inside_names_are_not_italic():
    # Given a service name with underscores
    html = render_teams_html(teams(text_block("lambda my_service_name")))
    # Then no italic is produced
    assert "<em>" not in html
    assert "my_service_name" in html


def test_textblock_style_properties_become_classes():
    # Given a styled TextBlock
    block = text_block("Alert", size="ExtraLarge", weight="Bolder", color="Attention", isSubtle=True)
    # When rendered
    html = render_teams_html(teams(block))
    # Then each property is reflected as a CSS class
    classes = re.search(r'<div class="(tb [^"]*)">Alert', html).group(1).split()
    assert {"size-extralarge", "bold", "color-attention", "subtle"} <= set(classes)
    assert "nowrap" not in classes


def test_container_columns_and_nested_items_render_recursively():
    # Given a ColumnSet whose Column holds a Container with a TextBlock
    column_set = {
        "type": "ColumnSet",
        "columns": [
            {"type": "Column", "width": "auto", "items": [text_block("left")]},
            {
                "type": "Column",
                "width": 2,
                "items": [{"type": "Container", "style": "attention", "items": [text_block("deep inside")]}],
            },
        ],
    }
    # When rendered
    html = render_teams_html(teams(column_set))
    # Then both columns with their widths and the nested text appear
    assert 'style="flex:0 0 auto"' in html
    assert 'style="flex:2 1 0"' in html
    assert 'class="container style-attention"' in html
    assert "deep inside" in html


def test_table_first_row_is_header_and_other_rows_are_cells():
    # Given a Table with a header row and one data row
    def row(*texts: str) -> dict:
        return {"type": "TableRow", "cells": [{"type": "TableCell", "items": [text_block(t)]} for t in texts]}

    table = {
        "type": "Table",
        "firstRowAsHeader": True,
        "columns": [{"width": 1}, {"width": 1}],
        "rows": [row("Service", "Cost"), row("EC2", "$10")],
    }
    # When rendered
    html = render_teams_html(teams(table))
    # Then the first row uses <th> and the second <td>
    assert start_tags(html).count("th") == 2
    assert start_tags(html).count("td") == 2
    assert html.index("Service") < html.index("<td>")


def test_image_shows_alt_text_and_never_embeds_the_url():
    # Given an Image element
    image = {"type": "Image", "url": "https://example.com/logo.png", "altText": "Logo"}
    html = render_teams_html(teams(image))
    # Then only the alt text is shown and no <img> is produced
    assert "[image: Logo]" in html
    assert "example.com" not in html
    assert "img" not in start_tags(html)


def test_rich_text_block_renders_text_runs():
    # Given a RichTextBlock with a bold and an italic run
    block = {
        "type": "RichTextBlock",
        "inlines": [
            {"type": "TextRun", "text": "Bold", "weight": "Bolder"},
            {"type": "TextRun", "text": "Slanted", "italic": True},
        ],
    }
    # When rendered
    html = render_teams_html(teams(block))
    # Then both runs appear with their styles
    assert "<strong>Bold</strong>" in html
    assert "<em>Slanted</em>" in html


def test_card_level_open_url_action_becomes_a_link():
    # Given a card with an Action.OpenUrl
    payload = teams(
        text_block("x"),
        actions=[{"type": "Action.OpenUrl", "title": "Open console", "url": "https://console.aws.amazon.com/"}],
    )
    # When rendered
    html = render_teams_html(payload)
    # Then the action is a link with its title
    assert hrefs(html) == ["https://console.aws.amazon.com/"]
    assert ">Open console</a>" in html


def test_schema_and_msteams_keys_do_not_leak_into_output():
    # Given a card with $schema and msteams keys (added by the teams() helper)
    html = render_teams_html(teams(text_block("hello")))
    # Then they are ignored
    assert "adaptivecards.io" not in html
    assert "Full" not in html
    assert html.startswith('<div class="card')


# ---------------------------------------------------------------- Teams: unknown elements
def test_unknown_element_renders_an_unsupported_note():
    html = render_teams_html(teams({"type": "Media", "sources": []}))
    assert "[unsupported: Media]" in html


def test_unknown_element_with_fallback_renders_the_fallback_instead():
    # Given an unknown element with a fallback TextBlock
    element = {"type": "Chart.Pie", "data": [], "fallback": text_block("Pie not supported here")}
    # When rendered
    html = render_teams_html(teams(element))
    # Then the fallback is rendered and no note is shown
    assert "Pie not supported here" in html
    assert "unsupported" not in html


# ---------------------------------------------------------------- Teams: charts
def test_chart_line_with_14_points_renders_polyline_with_14_points():
    html = render_teams_html(teams(LINE))
    lines = polyline_points(html)
    assert len(lines) == 1
    assert len(lines[0]) == 14


def test_chart_line_shows_axis_labels_legend_and_titles():
    html = render_teams_html(teams(LINE))
    # y min/max and first/last x labels
    for label in (">11<", ">24<", ">2024-05-01<", ">2024-05-14<"):
        assert label in html
    assert "Daily cost" in html and ">Day<" in html and ">USD<" in html
    assert "background:#0078d4" in html and "></span>Total</span>" in html


def test_chart_line_maps_larger_values_higher_up():
    # Given a rising series, SVG y coordinates must decrease (SVG y grows downwards)
    ys = [float(p.split(",")[1]) for p in polyline_points(render_teams_html(teams(LINE)))[0]]
    assert ys == sorted(ys, reverse=True)
    assert ys[0] > ys[-1]


def test_chart_line_renders_one_polyline_per_series():
    other = {"legend": "Other", "values": [{"x": 1, "y": 2}, {"x": 2, "y": 3}]}
    chart = {**LINE, "data": [LINE["data"][0], other]}
    assert len(polyline_points(render_teams_html(teams(chart)))) == 2


def test_horizontal_bar_widths_are_proportional_and_largest_is_100_percent():
    # Given three bars
    chart = {
        "type": "Chart.HorizontalBar",
        "title": "Top services",
        "displayMode": "AbsoluteWithAxis",
        "data": [{"x": "EC2", "y": 200}, {"x": "S3", "y": 50, "color": "good"}, {"x": "RDS", "y": 100}],
    }
    # When rendered
    html = render_teams_html(teams(chart))
    # Then widths are y / max in the data order
    widths = [float(w) for w in re.findall(r"width:([\d.]+)%", html)]
    assert widths == [100.0, 25.0, 50.0]
    for label in ("EC2", "S3", "RDS", ">200<", ">50<"):
        assert label in html


def test_horizontal_bar_colour_names_map_to_hex_and_unknown_is_grey():
    chart = {
        "type": "Chart.HorizontalBar",
        "data": [{"x": "a", "y": 1, "color": "good"}, {"x": "b", "y": 1, "color": "no-such-colour"}],
    }
    colours = re.findall(r"background:(#[0-9a-f]{6})", render_teams_html(teams(chart)))
    assert colours == ["#13a10e", "#8a8886"]


def test_gauge_shows_percentage_value_text_and_one_arc_per_segment():
    html = render_teams_html(teams(GAUGE))
    assert ">87%<" in html
    assert html.count('class="seg"') == 3
    assert "of monthly budget" in html and "Budget used" in html
    assert html.count('class="marker"') == 1


def test_gauge_fraction_format_shows_value_over_max():
    html = render_teams_html(teams({**GAUGE, "valueFormat": "Fraction"}))
    assert ">87/100<" in html


def test_gauge_segments_use_their_colours():
    html = render_teams_html(teams(GAUGE))
    segment_colours = re.findall(r'class="seg" [^>]*stroke="(#[0-9a-f]{6})"', html)
    assert segment_colours == ["#13a10e", "#ffb900", "#d13438"]


# ---------------------------------------------------------------- Teams: escaping and URLs
def test_script_tag_in_text_is_escaped():
    html = render_teams_html(teams(text_block("<script>alert('x')</script> & co")))
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in html


@pytest.mark.parametrize(
    "element",
    [
        {"type": "FactSet", "facts": [{"title": "<img src=x onerror=alert(1)>", "value": '"><b>'}]},
        {"type": "Chart.HorizontalBar", "title": "<i>t</i>", "data": [{"x": "<svc>", "y": 1}]},
        {"type": "Chart.Line", "title": "t", "data": [{"legend": "<b>", "values": [{"x": "<x>", "y": 1}]}]},
        {
            "type": "Chart.Gauge",
            "title": "t",
            "subLabel": "<u>s</u>",
            "min": 0,
            "max": 1,
            "value": 1,
            "segments": [{"from": 0, "to": 1, "color": "good", "legend": "<em>"}],
        },
        {"type": "<NotAType>"},
    ],
)
def test_markup_in_any_element_field_is_escaped(element):
    tags = set(start_tags(render_teams_html(teams(element))))
    assert not tags & {"img", "b", "i", "u", "em", "svc", "x", "notatype"}


def test_javascript_url_in_markdown_link_is_not_a_link():
    html = render_teams_html(teams(text_block("[click](javascript:alert)")))
    assert hrefs(html) == []
    assert "click" in html


def test_javascript_url_in_open_url_action_is_not_a_link():
    payload = teams(actions=[{"type": "Action.OpenUrl", "title": "Bad", "url": "javascript:alert(1)"}])
    html = render_teams_html(payload)
    assert "<a " not in html
    assert "Bad" in html


def test_link_url_with_quotes_and_ampersands_is_attribute_escaped():
    html = render_teams_html(teams(text_block('[x](https://e.com/?a=1&b="2")')))
    assert hrefs(html) == ["https://e.com/?a=1&amp;b=&quot;2&quot;"]


# ---------------------------------------------------------------- Slack
def slack(*blocks: dict, text: str = "Weekly cost report") -> dict:
    return {"text": text, "blocks": list(blocks)}


def test_slack_header_and_section_fields_render():
    # Given a header and a section with two fields
    payload = slack(
        {"type": "header", "text": {"type": "plain_text", "text": "AWS cost: week 21"}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": "*Total*\n$1,234"}, {"type": "mrkdwn", "text": "*Change*\n+5%"}],
        },
    )
    # When rendered
    html = render_slack_html(payload)
    # Then the header text and both fields (with bold and line breaks) appear
    assert "AWS cost: week 21" in html
    assert "<strong>Total</strong><br>$1,234" in html
    assert "<strong>Change</strong><br>+5%" in html


def test_slack_mrkdwn_bold_italic_code_and_link():
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": "*big* _slow_ `i-0abc` <https://aws.amazon.com/?a=1|console>"},
    }
    html = render_slack_html(slack(section))
    assert "<strong>big</strong>" in html
    assert "<em>slow</em>" in html
    assert "<code>i-0abc</code>" in html
    assert hrefs(html) == ["https://aws.amazon.com/?a=1"]
    assert ">console</a>" in html


def test_slack_plain_text_is_not_formatted():
    html = render_slack_html(slack({"type": "section", "text": {"type": "plain_text", "text": "*not bold*"}}))
    assert "*not bold*" in html
    assert "<strong>" not in html


def test_slack_script_and_entities_are_escaped():
    section = {"type": "section", "text": {"type": "mrkdwn", "text": '<script>x</script> &lt;b&gt; & "q"'}}
    html = render_slack_html(slack(section))
    assert "script" not in start_tags(html)
    assert "b" not in start_tags(html)
    assert "&lt;b&gt; &amp; &quot;q&quot;" in html


def test_slack_javascript_link_is_not_rendered_as_link():
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "<javascript:alert(1)|click me>"}}
    html = render_slack_html(slack(section))
    assert hrefs(html) == []


def test_slack_buttons_in_actions_and_accessory_become_links():
    def button(label: str, url: str) -> dict:
        return {"type": "button", "text": {"type": "plain_text", "text": label}, "url": url}

    payload = slack(
        {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}, "accessory": button("Open", "https://a.com")},
        {"type": "actions", "elements": [button("Budgets", "https://b.com"), button("Bad", "javascript:x")]},
    )
    html = render_slack_html(payload)
    assert hrefs(html) == ["https://a.com", "https://b.com"]
    assert "Bad" in html


def test_slack_context_divider_and_image_show_text_and_alt_only():
    payload = slack(
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": "Generated by FinOps Guard"},
                {"type": "image", "image_url": "https://x/i.png", "alt_text": "icon"},
            ],
        },
        {"type": "divider"},
        {"type": "image", "image_url": "https://x/chart.png", "alt_text": "cost chart"},
    )
    html = render_slack_html(payload)
    assert "Generated by FinOps Guard" in html
    assert "[image: icon]" in html and "[image: cost chart]" in html
    assert "hr" in start_tags(html)
    assert "img" not in start_tags(html) and "x/chart.png" not in html


def test_slack_rich_text_renders_plain_text_best_effort():
    block = {
        "type": "rich_text",
        "elements": [
            {
                "type": "rich_text_section",
                "elements": [
                    {"type": "text", "text": "Top: ", "style": {"bold": True}},
                    {"type": "text", "text": "EC2 <ondemand>"},
                ],
            },
            {
                "type": "rich_text_list",
                "style": "bullet",
                "elements": [{"type": "rich_text_section", "elements": [{"type": "text", "text": "item one"}]}],
            },
        ],
    }
    html = render_slack_html(slack(block))
    assert "<strong>Top: </strong>" in html
    assert "EC2 &lt;ondemand&gt;" in html
    assert "li" in start_tags(html) and "item one" in html


def test_slack_unknown_block_renders_unsupported_note():
    assert "[unsupported: video]" in render_slack_html(slack({"type": "video"}))


def test_slack_message_without_blocks_renders_its_text():
    html = render_slack_html({"text": "Only *text*"})
    assert "Only <strong>text</strong>" in html


# ---------------------------------------------------------------- page
def test_render_page_is_a_complete_document_with_every_section_heading():
    # Given two rendered fragments
    sections = [
        ("Teams – weekly", render_teams_html(teams(text_block("t")))),
        ("Slack <weekly>", render_slack_html(slack({"type": "divider"}))),
    ]
    # When a page is rendered
    page = render_page("FinOps Guard preview", sections)
    # Then it is a full document with title, inline CSS and each heading in order
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "<title>FinOps Guard preview</title>" in page and "<style>" in page
    assert page.index("<h2>Teams – weekly</h2>") < page.index("<h2>Slack &lt;weekly&gt;</h2>")
    assert sections[0][1] in page and sections[1][1] in page


def test_render_page_has_no_scripts_or_external_resources():
    page = render_page("p", [("Teams", render_teams_html(teams(LINE, GAUGE)))])
    tags = start_tags(page)
    assert "script" not in tags and "link" not in tags and "img" not in tags
    assert not re.search(r'(src|href)="https?:', page)
