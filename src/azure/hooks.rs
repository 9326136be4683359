//! Service-hook (Web Hooks) payloads: which events start an approval flow, and
//! how their resource maps to a release (azure-devops.md §3.3, §3.4).

use serde_json::Value;

use crate::domain::{
    policy::Decision,
    release::{AzureApprovalKind, AzureApprovalRef, Phase},
    settlement::AzureDecision,
};

/// Classic release created (publisher `rm`).
pub const RELEASE_CREATED: &str = "ms.vss-release.release-created-event";
/// Classic release deployment approval pending (publisher `rm`).
pub const APPROVAL_PENDING: &str = "ms.vss-release.deployment-approval-pending-event";
/// YAML pipelines approval pending (publisher `pipelines`).
pub const YAML_APPROVAL_PENDING: &str = "ms.vss-pipelinechecks-events.approval-pending";
/// Classic approval approved or rejected, in Azure or by deploy-gate's write-back.
pub const APPROVAL_COMPLETED: &str = "ms.vss-release.deployment-approval-completed-event";
/// YAML approval approved or rejected.
pub const YAML_APPROVAL_COMPLETED: &str = "ms.vss-pipelinechecks-events.approval-completed";
/// Classic release abandoned.
pub const RELEASE_ABANDONED: &str = "ms.vss-release.release-abandoned-event";
/// A classic stage's deployment ended (succeeded, cancelled, rejected…).
pub const DEPLOYMENT_COMPLETED: &str = "ms.vss-release.deployment-completed-event";

/// A release as described by a service-hook event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HookRelease {
    /// Project name (or id where the payload has no name).
    pub team_project: String,
    /// Release (or run) id.
    pub release_id: String,
    /// Release name.
    pub release_name: String,
    /// Environment (stage) name; empty for a release as a whole.
    pub stage: String,
    /// Deployment attempt, from 1; `None` where the event does not say (YAML).
    pub attempt: Option<u32>,
    /// Before or after the deployment.
    pub phase: Phase,
    /// The Azure DevOps approval to write the decision back to.
    pub azure_approval: Option<AzureApprovalRef>,
    /// Whom the event names as the approval's approver (display name, else id).
    pub approver: Option<String>,
    /// For YAML approvals: the identity of each step's assigned approver.
    pub step_approvers: Option<Vec<String>>,
    /// The identity ids the approval is assigned to (classic `approver.id`,
    /// YAML each step's `assignedApprover.id`).
    pub assigned_to: Vec<String>,
    /// Who created the release (`createdBy.uniqueName`, when it is an email address).
    pub requested_for: Option<String>,
    /// The release's or run's web page (`_links.web.href`), as sent.
    pub release_url: Option<String>,
    /// The release definition or pipeline name.
    pub definition_name: Option<String>,
}

/// What an event means for deploy-gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HookEvent {
    /// Start (or continue) the approval flow of this release.
    Release(Box<HookRelease>),
    /// A decision taken in Azure DevOps, which may settle rounds.
    Settle(AzureDecision),
    /// An event type deploy-gate does not act on.
    Ignored,
}

/// Reads an event; fails with the missing field's path when a handled event lacks one.
pub fn interpret(event_type: &str, resource: &Value) -> Result<HookEvent, String> {
    match event_type {
        RELEASE_CREATED => Ok(HookEvent::Release(Box::new(HookRelease {
            team_project: project(resource)?,
            release_id: text(resource, "/release/id")?,
            release_name: text(resource, "/release/name")?,
            stage: String::new(),
            attempt: Some(1),
            phase: Phase::Pre,
            azure_approval: None,
            approver: None,
            step_approvers: None,
            assigned_to: Vec::new(),
            requested_for: creator(resource),
            release_url: optional(resource, &["/release/_links/web/href"]),
            definition_name: optional(resource, &["/release/releaseDefinition/name"]),
        }))),
        APPROVAL_PENDING => Ok(HookEvent::Release(Box::new(HookRelease {
            team_project: project(resource)?,
            release_id: first(resource, &["/approval/release/id", "/release/id"])?,
            release_name: first(resource, &["/approval/release/name", "/release/name"])?,
            stage: first(resource, &["/approval/releaseEnvironment/name"])?,
            // Azure counts attempts from 0 in some payloads and from 1 in others.
            attempt: Some(
                resource
                    .pointer("/approval/attempt")
                    .and_then(Value::as_u64)
                    .map_or(1, |n| u32::try_from(n).unwrap_or(u32::MAX).max(1)),
            ),
            phase: match resource
                .pointer("/approval/approvalType")
                .and_then(Value::as_str)
            {
                Some("postDeploy") => Phase::Post,
                _ => Phase::Pre,
            },
            azure_approval: Some(AzureApprovalRef {
                kind: AzureApprovalKind::Classic,
                id: text(resource, "/approval/id")?,
            }),
            approver: first(
                resource,
                &[
                    "/approval/approver/displayName",
                    "/approval/approver/uniqueName",
                    "/approval/approver/id",
                ],
            )
            .ok(),
            step_approvers: None,
            assigned_to: text(resource, "/approval/approver/id")
                .into_iter()
                .collect(),
            requested_for: creator(resource),
            release_url: optional(
                resource,
                &[
                    "/release/_links/web/href",
                    "/approval/release/_links/web/href",
                ],
            ),
            definition_name: optional(
                resource,
                &[
                    "/approval/releaseDefinition/name",
                    "/release/releaseDefinition/name",
                ],
            ),
        }))),
        YAML_APPROVAL_PENDING => {
            let approval_id = text(resource, "/approval/id")?;
            let steps = resource
                .pointer("/approval/steps")
                .and_then(Value::as_array);
            let step_approvers = steps.map(|steps| {
                steps
                    .iter()
                    .filter_map(|step| text(step, "/assignedApprover/id").ok())
                    .collect::<Vec<_>>()
            });
            let approver = steps.and_then(|steps| {
                steps.iter().find_map(|step| {
                    first(
                        step,
                        &["/assignedApprover/displayName", "/assignedApprover/id"],
                    )
                    .ok()
                })
            });
            Ok(HookEvent::Release(Box::new(HookRelease {
                team_project: first(resource, &["/project/name", "/projectId"])?,
                release_id: first(resource, &["/run/id", "/approval/id"])?,
                release_name: first(resource, &["/run/name", "/pipeline/name"])
                    .unwrap_or_else(|_| format!("YAML approval {approval_id}")),
                stage: first(resource, &["/stage/name", "/stageName"]).unwrap_or_default(),
                // The sample's `attemptId` is 0: a number from 1 names the attempt.
                attempt: resource
                    .pointer("/attemptId")
                    .and_then(Value::as_u64)
                    .filter(|n| *n >= 1)
                    .map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
                phase: Phase::Pre,
                azure_approval: Some(AzureApprovalRef {
                    kind: AzureApprovalKind::Yaml,
                    id: approval_id,
                }),
                approver,
                assigned_to: step_approvers.clone().unwrap_or_default(),
                step_approvers,
                requested_for: None,
                release_url: optional(resource, &["/run/_links/web/href"]),
                definition_name: optional(resource, &["/pipeline/name", "/run/pipeline/name"]),
            })))
        }
        APPROVAL_COMPLETED | YAML_APPROVAL_COMPLETED => {
            let kind = match event_type {
                APPROVAL_COMPLETED => AzureApprovalKind::Classic,
                _ => AzureApprovalKind::Yaml,
            };
            let decision = match text(resource, "/approval/status")?.as_str() {
                "approved" => Decision::Approve,
                "rejected" => Decision::Reject,
                // Skipped, reassigned, cancelled: nothing decided.
                _ => return Ok(HookEvent::Ignored),
            };
            Ok(HookEvent::Settle(AzureDecision::Approval {
                approval: AzureApprovalRef {
                    kind,
                    id: text(resource, "/approval/id")?,
                },
                decision,
                by: first(
                    resource,
                    &[
                        "/approval/approvedBy/displayName",
                        "/approval/approvedBy/uniqueName",
                        "/approval/steps/0/actualApprover/displayName",
                    ],
                )
                .ok(),
            }))
        }
        RELEASE_ABANDONED => Ok(HookEvent::Settle(AzureDecision::Abandoned {
            team_project: project(resource)?,
            release_id: text(resource, "/release/id")?,
        })),
        DEPLOYMENT_COMPLETED => {
            let status = first(
                resource,
                &["/environment/status", "/deployment/deploymentStatus"],
            )?;
            if !matches!(
                status.to_ascii_lowercase().as_str(),
                "canceled" | "cancelled" | "rejected"
            ) {
                return Ok(HookEvent::Ignored);
            }
            Ok(HookEvent::Settle(AzureDecision::DeploymentStopped {
                team_project: project(resource)?,
                release_id: first(
                    resource,
                    &[
                        "/environment/release/id",
                        "/deployment/release/id",
                        "/release/id",
                    ],
                )?,
                stage: first(
                    resource,
                    &["/environment/name", "/deployment/releaseEnvironment/name"],
                )?,
                status,
            }))
        }
        _ => Ok(HookEvent::Ignored),
    }
}

/// The release's creator, when the payload names them by email (`uniqueName`).
fn creator(resource: &Value) -> Option<String> {
    first(
        resource,
        &[
            "/release/createdBy/uniqueName",
            "/approval/release/createdBy/uniqueName",
        ],
    )
    .ok()
    .filter(|name| name.contains('@'))
}

/// The first of `pointers` that holds text, if any.
fn optional(resource: &Value, pointers: &[&str]) -> Option<String> {
    first(resource, pointers).ok()
}

fn project(resource: &Value) -> Result<String, String> {
    first(
        resource,
        &["/project/name", "/release/projectReference/name"],
    )
}

fn first(resource: &Value, pointers: &[&str]) -> Result<String, String> {
    pointers
        .iter()
        .find_map(|p| text(resource, p).ok())
        .ok_or_else(|| format!("resource{} is missing", pointers[0]))
}

fn text(resource: &Value, pointer: &str) -> Result<String, String> {
    match resource.pointer(pointer) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        _ => Err(format!("resource{pointer} is missing")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_approval_pending_event_maps_to_its_stage_and_approval() {
        let resource = json!({
            "approval": {"id": 17, "releaseEnvironment": {"id": 5, "name": "Production"},
                         "release": {"id": 386, "name": "Release-386"}},
            "project": {"id": "p-guid", "name": "Devx"}
        });
        assert_eq!(
            interpret(APPROVAL_PENDING, &resource).unwrap(),
            HookEvent::Release(Box::new(HookRelease {
                team_project: "Devx".into(),
                release_id: "386".into(),
                release_name: "Release-386".into(),
                stage: "Production".into(),
                attempt: Some(1),
                phase: Phase::Pre,
                azure_approval: Some(AzureApprovalRef {
                    kind: AzureApprovalKind::Classic,
                    id: "17".into()
                }),
                approver: None,
                step_approvers: None,
                assigned_to: Vec::new(),
                requested_for: None,
                release_url: None,
                definition_name: None,
            }))
        );
    }

    #[test]
    fn a_yaml_approval_names_its_pipeline_and_links_its_run_where_the_payload_has_them() {
        // The run and pipeline as the docs' stage-state-changed sample shapes them.
        let web = "https://dev.azure.com/fabfiber/Fabrikam-Fiber-Git/_build/results?buildId=2";
        let resource = json!({
            "approval": {"id": "0f027b05-0942-4a35-9218-26fa07d8760a"},
            "projectId": "be9b3917-87e6-42a4-a549-2bc06a7a878f",
            "run": {"id": 2, "name": "20191213.1", "_links": {"web": {"href": web}},
                    "pipeline": {"id": 2, "name": "TEST-CI"}},
            "stage": {"name": "deploy"}
        });
        let HookEvent::Release(release) = interpret(YAML_APPROVAL_PENDING, &resource).unwrap()
        else {
            panic!("a release");
        };
        assert_eq!(release.release_url.as_deref(), Some(web));
        assert_eq!(release.definition_name.as_deref(), Some("TEST-CI"));
    }

    #[test]
    fn a_handled_event_without_its_release_is_an_error_naming_the_field() {
        let err = interpret(RELEASE_CREATED, &json!({"project": {"name": "Devx"}})).unwrap_err();
        assert!(err.contains("/release/id"), "{err}");
    }

    #[test]
    fn other_event_types_are_ignored() {
        assert_eq!(
            interpret("git.push", &json!({})).unwrap(),
            HookEvent::Ignored
        );
    }
}
