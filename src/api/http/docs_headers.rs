//! The headers of Swagger UI's pages (`/docs`): the same refusals of framing and
//! outside resources as every other page, with a CSP that lets exactly the inline
//! scripts poem-openapi writes into them run (by their SHA-256), and nothing else.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use base64::Engine;
use poem::{Endpoint, IntoResponse, Request, Response, http::HeaderValue};
use sha2::{Digest, Sha256};

/// The CSP of each `/docs` page, made from its body the first time it is served
/// (the pages are fixed for a build, so once per path).
#[derive(Clone, Default)]
pub struct DocsPolicies(Arc<Mutex<HashMap<String, HeaderValue>>>);

/// Serves a `/docs` page with the page headers and its hash-based CSP.
pub async fn with_docs_headers<E: Endpoint>(
    next: Arc<E>,
    req: Request,
    policies: DocsPolicies,
) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let (mut parts, body) = next.call(req).await?.into_response().into_parts();
    let body = body.into_bytes().await?;
    let known = policies.0.lock().expect("not poisoned").get(&path).cloned();
    let policy = match known {
        Some(policy) => policy,
        None => {
            let policy = HeaderValue::from_str(&policy_for(&String::from_utf8_lossy(&body)))
                .expect("a CSP is ASCII");
            let mut policies = policies.0.lock().expect("not poisoned");
            // Bounded: a path that is not a page answers 404 and adds one entry at most
            // per distinct path Swagger UI's router knows, which is two.
            if policies.len() < 16 {
                policies.insert(path, policy.clone());
            }
            policy
        }
    };
    parts.headers.insert("content-security-policy", policy);
    parts
        .headers
        .insert("x-frame-options", HeaderValue::from_static("DENY"));
    Ok(Response::from_parts(parts, body.into()))
}

/// The CSP of a page whose inline scripts are those of `html`.
fn policy_for(html: &str) -> String {
    let hashes: Vec<String> = inline_scripts(html)
        .map(|script| {
            let digest = Sha256::digest(script.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    let script_src = if hashes.is_empty() {
        "'none'".to_owned()
    } else {
        hashes.join(" ")
    };
    format!(
        "default-src 'none'; script-src {script_src}; style-src 'unsafe-inline'; \
         img-src 'self' data:; font-src 'self' data:; connect-src 'self'; \
         form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// The text of each `<script …>…</script>` element of `html`, read in order, so that
/// a `<script` inside a script's text (Swagger UI's bundle holds some) is text.
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        let (_, tag) = rest.split_once("<script")?;
        let (_, body) = tag.split_once('>')?;
        let (script, after) = body.split_once("</script>")?;
        rest = after;
        Some(script)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_inline_script_is_allowed_by_its_hash_and_nothing_else() {
        let html =
            "<html><script charset=\"UTF-8\">a('<script>')</script><p></p><script>\nb()\n</script>";
        let scripts: Vec<&str> = inline_scripts(html).collect();
        assert_eq!(scripts, ["a('<script>')", "\nb()\n"]);
        let policy = policy_for(html);
        let a = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(b"a('<script>')"));
        assert!(
            policy.contains(&format!("script-src 'sha256-{a}' 'sha256-")),
            "{policy}"
        );
        assert!(!policy.contains("unsafe-eval") && policy.contains("frame-ancestors 'none'"));
        assert!(policy_for("<p>no script</p>").contains("script-src 'none'"));
    }
}
