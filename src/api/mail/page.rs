//! The mail preview's pages: the list of emails, and one email as a mail client shows it.

use minijinja::context;

use super::body::{MailList, MailView};
use crate::api::pages::render;

/// Put before the HTML part: its links open in a new tab, out of the sandboxed frame.
const FRAME_BASE: &str = r#"<base target="_blank">"#;

/// The list of emails, newest first, each linking to its page.
pub fn list_page(list: &MailList) -> String {
    let messages: Vec<_> = list
        .messages
        .iter()
        .map(|m| {
            context! {
                file => m.file,
                // Relative to `/mail`, so that the pages work under a proxy's prefix.
                link => format!("mail/{}", m.file),
                time => m.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
                time_iso => m.time.to_rfc3339(),
                to => m.to.join(", "),
                subject => m.subject,
            }
        })
        .collect();
    render("mail_list.html", context! { messages })
}

/// One email: its headers, the HTML part in a sandboxed frame, and the text part
/// with its web addresses as links.
pub fn message_page(view: &MailView) -> String {
    let headers: Vec<_> = view
        .headers
        .iter()
        .map(|h| context! { name => h.name, value => h.value })
        .collect();
    let text = view.text.as_deref().map(|text| {
        text_with_links(text)
            .into_iter()
            .map(|(part, is_link)| context! { part, is_link })
            .collect::<Vec<_>>()
    });
    render(
        "mail_message.html",
        context! {
            file => view.file,
            subject => view.subject,
            from => view.from,
            to => view.to.join(", "),
            time => view.time.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
            time_iso => view.time.to_rfc3339(),
            srcdoc => view.html.as_deref().map(|html| format!("{FRAME_BASE}{html}")),
            text,
            headers,
        },
    )
}

/// `text` cut into runs of plain text and web addresses (`true`), in order.
fn text_with_links(text: &str) -> Vec<(&str, bool)> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = next_address(rest) {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
            .unwrap_or(tail.len());
        // Punctuation that ends a sentence is not part of the address.
        let address = tail[..end].trim_end_matches(['.', ',', ';', ':', ')', '!', '?']);
        if start > 0 {
            parts.push((&rest[..start], false));
        }
        parts.push((address, true));
        rest = &tail[address.len()..];
    }
    if !rest.is_empty() {
        parts.push((rest, false));
    }
    parts
}

/// Where the next `http://` or `https://` address of `text` starts.
fn next_address(text: &str) -> Option<usize> {
    ["https://", "http://"]
        .iter()
        .filter_map(|scheme| text.find(scheme))
        .min()
}

#[cfg(test)]
mod tests {
    use poem_openapi::types::Example;

    use super::*;

    #[test]
    fn addresses_in_the_text_part_become_links_without_trailing_punctuation() {
        let parts = text_with_links("Open https://gate/approval?token=a.b-c. Or http://x/y\n");
        assert_eq!(
            parts,
            [
                ("Open ", false),
                ("https://gate/approval?token=a.b-c", true),
                (". Or ", false),
                ("http://x/y", true),
                ("\n", false),
            ]
        );
        assert_eq!(text_with_links("no link"), [("no link", false)]);
    }

    #[test]
    fn the_message_page_escapes_the_text_and_frames_the_html_in_a_sandbox() {
        let mut view = MailView::example();
        view.subject = "<script>x</script>".into();
        view.text = Some("<img src=x> javascript:alert(1) http://gate/a\"onmouseover=1".into());
        view.html = Some("<script>alert(1)</script>".into());
        let html = message_page(&view);
        assert!(
            html.contains("&lt;script&gt;x") && !html.contains("<script>"),
            "{html}"
        );
        assert!(html.contains("&lt;img src=x&gt;") && !html.contains("<img"));
        assert!(!html.contains("onmouseover=1\""), "{html}");
        assert!(html.contains(r#"sandbox="allow-popups allow-popups-to-escape-sandbox""#));
        assert!(html.contains("srcdoc=\"&lt;base target=&quot;_blank&quot;&gt;&lt;script&gt;"));
    }
}
