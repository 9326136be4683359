//! The mail preview: `GET /mail` (the emails written to the mail folder, newest first)
//! and `GET /mail/{file}` (one of them, decoded), for people (HTML) and scripts (JSON).
//! It exists only while emails go to files (no SMTP server configured), and asks for
//! the API key when one is set: the emails hold approval links.

mod body;
mod page;

use std::sync::Arc;

use poem::{Request, web::Data};
use poem_openapi::{OpenApi, param::Path};

use self::body::{MailList, MailView};
use crate::{
    api::{
        http::{
            auth::Credentials,
            negotiate::{Negotiated, wants_html},
            problem::{ErrorStatuses, Problem},
        },
        pages::{Audience, ProblemPage},
        shared::state::{ApiTags, AppState},
    },
    notify::Mailbox,
};

/// Most emails the list shows.
const LIST_LIMIT: usize = 100;

/// Errors of `GET /mail`.
pub struct ListErrors;
impl ErrorStatuses for ListErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (401, "The API key is required and was missing or wrong."),
        (
            404,
            "Emails are sent to an SMTP server (`DEPLOY_GATE_SMTP_URL`), so there is no preview.",
        ),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (500, "The mail folder could not be read; the log says why."),
    ];
}

/// Errors of `GET /mail/{file}`.
pub struct MessageErrors;
impl ErrorStatuses for MessageErrors {
    const STATUSES: &'static [(u16, &'static str)] = &[
        (401, "The API key is required and was missing or wrong."),
        (
            404,
            "No email of that name in the mail folder, or emails are sent to an SMTP server.",
        ),
        (
            429,
            "Too many failed authentications from this client; retry after `Retry-After` seconds.",
        ),
        (500, "The mail folder could not be read; the log says why."),
    ];
}

/// The preview of the emails written to the mail folder.
pub struct MailApi;

#[OpenApi(tag = "ApiTags::Mail")]
impl MailApi {
    /// The emails written to the mail folder, newest first.
    ///
    /// Only while no SMTP server is configured (`DEPLOY_GATE_SMTP_URL` unset): each
    /// email then goes to a file of `DEPLOY_GATE_MAIL_DIR`, and this lists the newest
    /// 100 with their time, recipients and subject. Browsers get a page; they sign in
    /// with Basic credentials, any user name and the API key as the password.
    #[oai(path = "/mail", method = "get", operation_id = "listMail")]
    async fn list_mail(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        credentials: Credentials,
    ) -> Result<Negotiated<MailList>, ProblemPage<ListErrors>> {
        let html = wants_html(req);
        let list = async {
            let mailbox = open_mailbox(&state, &credentials)?;
            let summaries = mailbox
                .list(LIST_LIMIT)
                .await
                .map_err(|err| unreadable(mailbox, &err))?;
            Ok::<_, Problem>(MailList {
                messages: summaries.into_iter().map(Into::into).collect(),
            })
        }
        .await
        .map_err(|problem| ProblemPage::new(problem, html, Audience::Operator))?;
        Ok(if html {
            Negotiated::Html(page::list_page(&list))
        } else {
            Negotiated::Json(list)
        })
    }

    /// One email of the mail folder, decoded.
    ///
    /// Its headers, plain-text part and HTML part (quoted-printable, base64 and
    /// encoded words decoded). Browsers get a page showing the HTML part in a
    /// sandboxed frame, as a mail client would, with the text part and the headers.
    #[oai(path = "/mail/:file", method = "get", operation_id = "getMail")]
    async fn get_mail(
        &self,
        state: Data<&Arc<AppState>>,
        req: &Request,
        credentials: Credentials,
        /// The file's name, as the list gives it: `<UTC time>-<id>.eml`.
        file: Path<String>,
    ) -> Result<Negotiated<MailView>, ProblemPage<MessageErrors>> {
        let html = wants_html(req);
        let view = async {
            let mailbox = open_mailbox(&state, &credentials)?;
            let message = mailbox
                .open(&file)
                .await
                .map_err(|err| unreadable(mailbox, &err))?
                .ok_or_else(|| Problem::not_found("no such email in the mail folder"))?;
            Ok::<_, Problem>(MailView::from(message))
        }
        .await
        .map_err(|problem| ProblemPage::new(problem, html, Audience::Operator))?;
        Ok(if html {
            Negotiated::Html(page::message_page(&view))
        } else {
            Negotiated::Json(view)
        })
    }
}

/// The mailbox, to a caller with the API key; without a mail folder the preview
/// answers as a path that does not exist would.
fn open_mailbox<'a>(
    state: &'a AppState,
    credentials: &Credentials,
) -> Result<&'a Mailbox, Problem> {
    let mailbox = state
        .mailbox
        .as_ref()
        .ok_or_else(|| Problem::not_found("no such resource"))?;
    state.api_keys.read(|keys| credentials.check(keys))?;
    Ok(mailbox)
}

/// A mail folder that could not be read: logged with the cause, a generic 500 to the client.
fn unreadable(mailbox: &Mailbox, err: &std::io::Error) -> Problem {
    tracing::error!(folder = %mailbox.dir().display(), error = %err, "reading the mail folder failed");
    Problem::internal()
}
