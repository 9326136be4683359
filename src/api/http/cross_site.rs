//! Cross-site state changes refused: a browser signed in to the board replays its Basic
//! credentials on another site's form posts too. Browsers mark where a request comes from
//! (`Sec-Fetch-Site`, or in older ones `Origin`); pipelines, service hooks and scripts send
//! neither header and are not affected.

use poem::{Request, http::header};

use super::problem::{Problem, ProblemCode};

/// `403 cross-site-request` for a request a browser sent from another site: `Sec-Fetch-Site`
/// other than `same-origin` or `none` (typed in), or without it an `Origin` that is neither
/// `own_origin` (the public URL's) nor of the request's `Host`.
pub fn refuse_cross_site(req: &Request, own_origin: Option<&str>) -> Result<(), Problem> {
    let value = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
    let same_origin = match (
        value(header::HeaderName::from_static("sec-fetch-site")),
        value(header::ORIGIN),
    ) {
        (Some(site), _) => site == "same-origin" || site == "none",
        (None, Some(origin)) => {
            own_origin.is_some_and(|own| own.eq_ignore_ascii_case(origin))
                || matches!(
                    (origin.split_once("://"), value(header::HOST)),
                    (Some((_, from)), Some(host)) if from.eq_ignore_ascii_case(host)
                )
        }
        (None, None) => true,
    };
    if same_origin {
        return Ok(());
    }
    tracing::warn!(
        path = %req.uri().path(),
        "refused a cross-site request to change state"
    );
    Err(Problem::new(
        ProblemCode::CrossSiteRequest,
        "a state change is not accepted from another site's page; nothing changed",
    ))
}

/// The origin (`scheme://host[:port]`) of `url`, as a browser writes it in `Origin`.
pub fn origin_of(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    match parsed.origin() {
        url::Origin::Tuple(..) => Some(parsed.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_origin_of_a_public_url_drops_its_path_and_default_port() {
        assert_eq!(
            origin_of("https://gate.example.com:443/base/").as_deref(),
            Some("https://gate.example.com")
        );
        assert_eq!(
            origin_of("http://10.0.0.5:8000").as_deref(),
            Some("http://10.0.0.5:8000")
        );
        assert_eq!(origin_of("not a url"), None);
    }
}
