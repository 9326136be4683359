//! The Azure DevOps credential: a PAT or Entra ID, never both, each complete.

use super::*;

const RELEASES: &str = "https://vsrm.dev.azure.com/contoso";

/// Write-back to contoso with `adjust` applied.
fn settings(adjust: impl FnOnce(&mut Settings)) -> Settings {
    let mut settings = Settings {
        azure_devops_url: Some(RELEASES.into()),
        ..Settings::default()
    };
    adjust(&mut settings);
    settings
}

fn service_principal(s: &mut Settings) {
    s.azure_tenant_id = Some("11111111-2222-3333-4444-555555555555".into());
    s.azure_client_id = Some("66666666-7777-8888-9999-000000000000".into());
    s.azure_client_secret = Some(Secret::new("client-secret"));
}

fn credential(settings: Settings) -> AzureCredential {
    Config::from_settings(settings)
        .unwrap()
        .azure_devops
        .unwrap()
        .credential
}

fn refusal(settings: Settings) -> String {
    format!("{:#}", Config::from_settings(settings).unwrap_err())
}

#[test]
fn tenant_client_id_and_secret_make_a_service_principal_at_the_public_authority() {
    let AzureCredential::ServicePrincipal {
        tenant_id,
        client_id,
        secret,
        authority_host,
    } = credential(settings(service_principal))
    else {
        panic!("a service principal");
    };
    assert_eq!(tenant_id, "11111111-2222-3333-4444-555555555555");
    assert_eq!(client_id, "66666666-7777-8888-9999-000000000000");
    assert_eq!(secret.expose(), "client-secret");
    assert_eq!(
        authority_host.as_str(),
        "https://login.microsoftonline.com/"
    );
}

#[test]
fn a_managed_identity_is_system_assigned_unless_a_client_id_names_a_user_assigned_one() {
    let system = credential(settings(|s| s.azure_managed_identity = Some(true)));
    assert!(matches!(
        system,
        AzureCredential::ManagedIdentity { client_id: None }
    ));
    let user = credential(settings(|s| {
        s.azure_managed_identity = Some(true);
        s.azure_client_id = Some("abc".into());
    }));
    assert!(
        matches!(user, AzureCredential::ManagedIdentity { client_id: Some(ref id) } if id == "abc")
    );
}

#[test]
fn a_pat_and_entra_id_together_stop_the_start_naming_both() {
    for entra in [
        service_principal as fn(&mut Settings),
        |s| s.azure_managed_identity = Some(true),
        |s| s.azure_client_secret = Some(Secret::new("x")),
    ] {
        let err = refusal(settings(|s| {
            s.azure_devops_pat = Some(Secret::new("pat-000"));
            entra(s);
        }));
        assert!(err.contains("DEPLOY_GATE_AZURE_DEVOPS_PAT"), "{err}");
        assert!(
            err.contains("DEPLOY_GATE_AZURE_TENANT_ID")
                || err.contains("DEPLOY_GATE_AZURE_MANAGED_IDENTITY")
                || err.contains("DEPLOY_GATE_AZURE_CLIENT_SECRET"),
            "{err}"
        );
        assert!(err.contains("not both"), "{err}");
    }
}

#[test]
fn an_incomplete_service_principal_names_what_is_missing() {
    let err = refusal(settings(|s| {
        service_principal(s);
        s.azure_client_secret = None;
    }));
    assert!(
        err.contains("DEPLOY_GATE_AZURE_CLIENT_SECRET missing"),
        "{err}"
    );
    let err = refusal(settings(|s| s.azure_tenant_id = Some("t".into())));
    assert!(
        err.contains("DEPLOY_GATE_AZURE_CLIENT_ID and DEPLOY_GATE_AZURE_CLIENT_SECRET missing"),
        "{err}"
    );
}

#[test]
fn a_managed_identity_with_a_tenant_or_secret_is_refused() {
    let err = refusal(settings(|s| {
        service_principal(s);
        s.azure_managed_identity = Some(true);
    }));
    assert!(
        err.contains(
            "DEPLOY_GATE_AZURE_TENANT_ID is set with DEPLOY_GATE_AZURE_MANAGED_IDENTITY=true"
        ),
        "{err}"
    );
}

#[test]
fn entra_id_without_an_azure_devops_url_or_a_url_without_a_credential_is_refused() {
    let mut alone = Settings::default();
    service_principal(&mut alone);
    let err = refusal(alone);
    assert!(
        err.contains(
            "DEPLOY_GATE_AZURE_DEVOPS_URL must be set with DEPLOY_GATE_AZURE_CLIENT_SECRET"
        ),
        "{err}"
    );
    let err = refusal(settings(|_| {}));
    assert!(
        err.contains("DEPLOY_GATE_AZURE_DEVOPS_URL must be set with DEPLOY_GATE_AZURE_DEVOPS_PAT or with Entra ID"),
        "{err}"
    );
}

#[test]
fn the_authority_host_must_be_https() {
    let err = refusal(settings(|s| {
        service_principal(s);
        s.azure_authority_host = Some("http://login.example.com".into());
    }));
    assert!(err.contains("DEPLOY_GATE_AZURE_AUTHORITY_HOST"), "{err}");
    assert!(err.contains("https://"), "{err}");
}

#[test]
fn a_ca_file_must_hold_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [empty, dir.path().join("absent.pem")] {
        let err = refusal(settings(|s| {
            service_principal(s);
            s.azure_ca_file = Some(path.clone());
        }));
        assert!(err.contains("DEPLOY_GATE_AZURE_CA_FILE"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
    }
}
