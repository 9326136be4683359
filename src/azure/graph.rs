//! Who is in an Azure DevOps group, team or identity, as mail addresses.
//! Graph (on `vssps.dev.azure.com/{org}`): Descriptors - Get (an identity's
//! id to its subject descriptor), Subject Lookup (a subject's kind and mail
//! address), Memberships - List with `direction=down` (a group's members);
//! nested groups are expanded. Teams: Get Team Members With Extended
//! Properties (core, on the organization URL). Shapes as in
//! MicrosoftDocs/vsts-rest-api-specs `specification/graph/7.1` and `core/7.1`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::{AzureClient, Organization, client::Auth};

/// Most subjects (users and groups) one look-up may visit: a guard against a
/// membership graph far larger than any approver list.
const MAX_SUBJECTS: usize = 5_000;
/// Descriptors per Subject Lookup request.
const LOOKUP_BATCH: usize = 100;
/// Team members per page.
const TEAM_PAGE: usize = 100;

/// The members found, as addresses, and those without one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Members {
    /// Mail addresses (`mailAddress`, else a `principalName` that is an address), as Azure wrote them.
    pub addresses: Vec<String>,
    /// Users without a usable address, by display name (reported on the release).
    pub without_address: Vec<String>,
}

/// Graph and team look-ups with deploy-gate's Azure DevOps credentials.
#[derive(Clone)]
pub struct Directory {
    client: AzureClient,
    azure: Organization,
    graph_url: String,
}

/// `{"value": "aad.…"}` of Descriptors - Get.
#[derive(Deserialize)]
struct Descriptor {
    value: String,
}

/// `{"count": n, "value": [...]}`, the list shape of Azure DevOps.
#[derive(Deserialize)]
struct List<T> {
    value: Vec<T>,
}

/// One `GraphMembership`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Membership {
    member_descriptor: String,
}

/// One `GraphSubject` of a Subject Lookup answer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Subject {
    #[serde(default)]
    subject_kind: String,
    #[serde(default)]
    mail_address: Option<String>,
    #[serde(default)]
    principal_name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// `{"count": n, "value": {"<descriptor>": GraphSubject}}` of Subject Lookup.
#[derive(Deserialize)]
struct Looked {
    value: BTreeMap<String, Subject>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LookupBody<'a> {
    lookup_keys: Vec<LookupKey<'a>>,
}

#[derive(Serialize)]
struct LookupKey<'a> {
    descriptor: &'a str,
}

/// One `TeamMember`: `{"isTeamAdmin": false, "identity": IdentityRef}`.
#[derive(Deserialize)]
struct TeamMember {
    identity: IdentityRef,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IdentityRef {
    id: String,
    #[serde(default)]
    unique_name: Option<String>,
    #[serde(default)]
    is_container: bool,
    #[serde(default)]
    descriptor: Option<String>,
}

impl Directory {
    /// Look-ups against `azure`'s organization.
    pub fn new(client: AzureClient, azure: Organization) -> Self {
        let graph_url = graph_url(&azure.settings.org_url).to_string();
        Self {
            client,
            azure,
            graph_url: graph_url.trim_end_matches('/').to_owned(),
        }
    }

    fn auth(&self) -> Auth<'_> {
        Auth::Own(&self.azure.auth)
    }

    fn preview(&self) -> String {
        preview_version(&self.azure.settings.api_version)
    }

    /// The members of the group with subject descriptor `descriptor`, nested groups expanded.
    pub async fn group_members(&self, descriptor: &str) -> anyhow::Result<Members> {
        self.expand(vec![descriptor.to_owned()]).await
    }

    /// The people behind identity ids (storage keys), as an approval names its
    /// approver: a user is its address, a group its members.
    pub async fn identity_members(&self, ids: &[String]) -> anyhow::Result<Members> {
        let mut descriptors = Vec::new();
        for id in ids {
            descriptors.push(self.descriptor_of(id).await?);
        }
        self.expand(descriptors).await
    }

    /// The members of `team` (name or id) of `project`: users by their
    /// `uniqueName` address, groups expanded through Graph.
    pub async fn team_members(&self, project: &str, team: &str) -> anyhow::Result<Members> {
        let mut found = Members::default();
        let mut through_graph = Vec::new();
        for skip in (0..).step_by(TEAM_PAGE) {
            let url = format!(
                "{}/_apis/projects/{}/teams/{}/members?$top={TEAM_PAGE}&$skip={skip}&api-version={}",
                self.azure.settings.org_url.as_str().trim_end_matches('/'),
                segment(project),
                segment(team),
                segment(&self.azure.settings.api_version),
            );
            let page: List<TeamMember> = self.client.get_json(&url, self.auth()).await?;
            let full = page.value.len() == TEAM_PAGE;
            for member in page.value {
                let identity = member.identity;
                match identity.unique_name.filter(|n| n.contains('@')) {
                    Some(address) if !identity.is_container => found.addresses.push(address),
                    _ => through_graph.push(match identity.descriptor {
                        Some(descriptor) => descriptor,
                        None => self.descriptor_of(&identity.id).await?,
                    }),
                }
            }
            if !full || skip >= MAX_SUBJECTS {
                break;
            }
        }
        if !through_graph.is_empty() {
            let more = self.expand(through_graph).await?;
            found.addresses.extend(more.addresses);
            found.without_address.extend(more.without_address);
        }
        Ok(found)
    }

    /// Descriptors - Get: the subject descriptor of an identity id.
    async fn descriptor_of(&self, id: &str) -> anyhow::Result<String> {
        let url = format!(
            "{}/_apis/graph/descriptors/{}?api-version={}",
            self.graph_url,
            segment(id),
            segment(&self.azure.settings.api_version),
        );
        let found: Descriptor = self.client.get_json(&url, self.auth()).await?;
        Ok(found.value)
    }

    /// Users' addresses among `roots` and, level by level, the members of every group met.
    /// A root Graph does not know is an error (a wrong descriptor); a member it
    /// does not know (removed meanwhile) is reported, not fatal.
    async fn expand(&self, roots: Vec<String>) -> anyhow::Result<Members> {
        let mut seen: BTreeSet<String> = roots.iter().cloned().collect();
        let root_set = seen.clone();
        let mut level = roots;
        let mut found = Members::default();
        while !level.is_empty() {
            let subjects = self.lookup(&level).await?;
            let mut groups = Vec::new();
            for descriptor in &level {
                match subjects.get(descriptor) {
                    Some(subject) if subject.subject_kind.eq_ignore_ascii_case("group") => {
                        groups.push(descriptor.as_str());
                    }
                    Some(subject) if subject.subject_kind.eq_ignore_ascii_case("user") => {
                        match address_of(subject) {
                            Some(address) => found.addresses.push(address),
                            None => found
                                .without_address
                                .push(subject.display_name.clone().unwrap_or(descriptor.clone())),
                        }
                    }
                    // Service principals and other kinds have no mailbox to ask.
                    Some(_) => {}
                    None if root_set.contains(descriptor) => {
                        bail!("Azure DevOps Graph does not know the subject {descriptor}")
                    }
                    None => found.without_address.push(descriptor.clone()),
                }
            }
            let mut next = Vec::new();
            for group in groups {
                for member in self.members_down(group).await? {
                    if seen.insert(member.clone()) {
                        next.push(member);
                    }
                }
            }
            if seen.len() > MAX_SUBJECTS {
                bail!(
                    "the Azure DevOps group has more than {MAX_SUBJECTS} members and nested groups"
                );
            }
            level = next;
        }
        Ok(found)
    }

    /// Subject Lookup, in batches.
    async fn lookup(&self, descriptors: &[String]) -> anyhow::Result<BTreeMap<String, Subject>> {
        let url = format!(
            "{}/_apis/graph/subjectlookup?api-version={}",
            self.graph_url,
            segment(&self.preview()),
        );
        let mut found = BTreeMap::new();
        for batch in descriptors.chunks(LOOKUP_BATCH) {
            let body = LookupBody {
                lookup_keys: batch.iter().map(|d| LookupKey { descriptor: d }).collect(),
            };
            let answer: Looked = self.client.post_json(&url, self.auth(), &body).await?;
            found.extend(answer.value);
        }
        Ok(found)
    }

    /// Memberships - List, `direction=down`: the direct members of a group.
    async fn members_down(&self, group: &str) -> anyhow::Result<Vec<String>> {
        let url = format!(
            "{}/_apis/graph/memberships/{}?direction=down&api-version={}",
            self.graph_url,
            segment(group),
            segment(&self.preview()),
        );
        let list: List<Membership> = self.client.get_json(&url, self.auth()).await?;
        Ok(list
            .value
            .into_iter()
            .map(|m| m.member_descriptor)
            .collect())
    }
}

/// A user's mailbox: `mailAddress`, else a `principalName` that is an address.
fn address_of(subject: &Subject) -> Option<String> {
    fn usable(s: &Option<String>) -> Option<&str> {
        s.as_deref().map(str::trim).filter(|s| s.contains('@'))
    }
    usable(&subject.mail_address)
        .or_else(|| usable(&subject.principal_name))
        .map(str::to_owned)
}

/// The Graph host of an organization: `dev.azure.com/org` → `vssps.dev.azure.com/org`,
/// `org.visualstudio.com` → `org.vssps.visualstudio.com`, else the same URL
/// (Azure DevOps Server serves Graph on the collection URL).
pub fn graph_url(org_url: &url::Url) -> url::Url {
    let mut graph = org_url.clone();
    let host = org_url.host_str().unwrap_or_default().to_ascii_lowercase();
    let derived = if host == "dev.azure.com" {
        Some("vssps.dev.azure.com".to_owned())
    } else {
        host.strip_suffix(".visualstudio.com")
            .filter(|account| !account.contains('.'))
            .map(|account| format!("{account}.vssps.visualstudio.com"))
    };
    if let Some(host) = derived {
        // Both are valid host names, so setting one cannot fail.
        let _ = graph.set_host(Some(&host));
    }
    graph
}

/// Graph's memberships and subject lookup are preview APIs: `7.1` → `7.1-preview.1`.
fn preview_version(api_version: &str) -> String {
    if api_version.contains("-preview") {
        api_version.to_owned()
    } else {
        format!("{api_version}-preview.1")
    }
}

/// A path or query segment, percent-encoded.
fn segment(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_lives_on_vssps_of_the_organization() {
        let graph = |org: &str| graph_url(&org.parse().unwrap()).to_string();
        assert_eq!(
            graph("https://dev.azure.com/contoso"),
            "https://vssps.dev.azure.com/contoso"
        );
        assert_eq!(
            graph("https://contoso.visualstudio.com/"),
            "https://contoso.vssps.visualstudio.com/"
        );
        assert_eq!(
            graph("https://tfs.example.com/tfs/DefaultCollection"),
            "https://tfs.example.com/tfs/DefaultCollection"
        );
    }

    #[test]
    fn graph_look_ups_use_the_preview_of_the_configured_version() {
        assert_eq!(preview_version("7.1"), "7.1-preview.1");
        assert_eq!(preview_version("6.0-preview.1"), "6.0-preview.1");
    }

    #[test]
    fn a_user_without_a_mail_address_falls_back_to_an_address_shaped_principal_name() {
        let subject = |mail: Option<&str>, principal: &str| Subject {
            subject_kind: "user".into(),
            mail_address: mail.map(str::to_owned),
            principal_name: Some(principal.to_owned()),
            display_name: None,
        };
        assert_eq!(
            address_of(&subject(Some("a@x.io"), "b@x.io")).as_deref(),
            Some("a@x.io")
        );
        assert_eq!(
            address_of(&subject(None, "b@x.io")).as_deref(),
            Some("b@x.io")
        );
        assert_eq!(address_of(&subject(Some(""), "CONTOSO\\bob")), None);
    }
}
