//! Bidirectional-text controls in text people read: `invoice\u{202E}fdp.exe` shows as
//! `invoiceexe.pdf`, so a release name, stage or comment could show something other
//! than what it is. Pages and emails show each such control as a visible `[U+202E]`.

use std::borrow::Cow;

/// Whether `c` reorders or isolates text: the Arabic letter mark, the left-to-right
/// and right-to-left marks, the embeddings and overrides, and the isolates.
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
    )
}

/// `text` with each bidi control written out as `[U+XXXX]`; borrowed when it has none.
pub fn neutralise(text: &str) -> Cow<'_, str> {
    if !text.contains(is_bidi_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_bidi_control(c) {
            out.push_str(&format!("[U+{:04X}]", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bidi_control_is_written_out_and_other_text_is_kept() {
        assert_eq!(
            neutralise("invoice\u{202e}fdp.exe"),
            "invoice[U+202E]fdp.exe"
        );
        assert_eq!(
            neutralise("\u{2066}a\u{2069}\u{200f}\u{61c}"),
            "[U+2066]a[U+2069][U+200F][U+061C]"
        );
        assert!(matches!(
            neutralise("שלום, Ana é"),
            Cow::Borrowed("שלום, Ana é")
        ));
    }
}
