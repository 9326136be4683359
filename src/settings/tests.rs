//! Settings from the file, the environment and defaults, checked and printed.

use super::*;

#[test]
fn empty_settings_give_a_working_default_config() {
    let config = Config::from_settings(Settings::default()).unwrap();
    assert_eq!(config.bind.to_string(), "127.0.0.1:8000");
    assert_eq!(config.database.url.expose(), "sqlite://deploy-gate.db");
    assert_eq!(config.database.max_connections, 10);
    assert_eq!(config.database.statement_timeout, Duration::from_secs(30));
    assert_eq!(config.database.connect_timeout, Duration::from_secs(5));
    assert!(matches!(config.mail, MailTarget::Directory(ref d) if d == &PathBuf::from("mail")));
    assert_eq!(config.required_approvals, None);
}

#[test]
fn a_bad_value_names_its_variable() {
    let settings = Settings {
        approvers_url: Some("ftp://x".into()),
        ..Settings::default()
    };
    let err = format!("{:#}", Config::from_settings(settings).unwrap_err());
    assert!(err.contains("DEPLOY_GATE_APPROVERS_URL"), "{err}");
}

#[test]
fn retention_is_unset_by_default_read_in_days_and_at_least_a_day() {
    assert_eq!(
        Config::from_settings(Settings::default())
            .unwrap()
            .retention,
        None
    );
    let file: Settings = toml::from_str("retention = \"400d\"").unwrap();
    let retention = Config::from_settings(file).unwrap().retention;
    assert_eq!(retention, Some(Duration::from_secs(400 * 24 * 3600)));
    let short = Settings {
        retention: Some(Duration::from_secs(3600)),
        ..Settings::default()
    };
    let err = format!("{:#}", Config::from_settings(short).unwrap_err());
    assert!(
        err.contains("DEPLOY_GATE_RETENTION") && err.contains("1d"),
        "{err}"
    );
}

#[test]
fn database_pool_settings_come_from_the_file_and_are_checked() {
    let file: Settings = toml::from_str(
        "database_url = \"postgres://db/gate\"\ndatabase_max_connections = 3\n\
         database_statement_timeout = \"45s\"\ndatabase_connect_timeout = \"250ms\"",
    )
    .unwrap();
    let database = Config::from_settings(file).unwrap().database;
    assert_eq!(database.max_connections, 3);
    assert_eq!(database.statement_timeout, Duration::from_secs(45));
    assert_eq!(database.connect_timeout, Duration::from_millis(250));

    let empty_pool = Settings {
        database_max_connections: Some(0),
        ..Settings::default()
    };
    let err = format!("{:#}", Config::from_settings(empty_pool).unwrap_err());
    assert!(
        err.contains("DEPLOY_GATE_DATABASE_MAX_CONNECTIONS"),
        "{err}"
    );
    let mysql = Settings {
        database_url: Some(Secret::new("mysql://db/gate")),
        ..Settings::default()
    };
    let err = format!("{:#}", Config::from_settings(mysql).unwrap_err());
    assert!(err.contains("DEPLOY_GATE_DATABASE_URL"), "{err}");
}

#[test]
fn the_printed_configuration_masks_every_secret_and_reads_back() {
    let settings = Settings {
        database_url: Some(Secret::new("postgres://gate:pg-pass-123@db/gate")),
        smtp_url: Some(Secret::new(
            "smtp://mailer:smtp-pass-456@mail:587?tls=required",
        )),
        token_secret: Some(Secret::new("token-secret-0123456789")),
        api_key: Some(Secret::new("api-key-789-0123456789abcdef")),
        azure_devops_url: Some("https://vsrm.dev.azure.com/contoso".into()),
        azure_devops_pat: Some(Secret::new("pat-000")),
        ..Settings::default()
    };
    let printed = Config::from_settings(settings).unwrap().to_masked_toml();
    for secret in [
        "pg-pass-123",
        "smtp-pass-456",
        "token-secret-0123456789",
        "api-key-789-0123456789abcdef",
        "pat-000",
    ] {
        assert!(!printed.contains(secret), "{secret} leaked:\n{printed}");
    }
    assert!(printed.contains("database_url = \"postgres://****:****@db/gate\""));
    assert!(printed.contains("# hook_secret is not set"));
    // Apart from the masked values, the output is a valid settings file.
    let reread: Settings = toml::from_str(&printed).expect("valid TOML settings");
    assert_eq!(reread.workers, Some(4));
    assert_eq!(
        reread.approval_deadline,
        Some(Duration::from_secs(48 * 3600))
    );
}

#[test]
fn a_policy_with_azure_approvers_needs_azure_devops_and_prints_its_source() {
    let policies: Settings = toml::from_str(
        r#"
        [[policies]]
        team_project = "Devx"
        azure_approvers = { group = "vssgp.U3Jl" }
        "#,
    )
    .unwrap();
    let err = Config::from_settings(policies.clone()).unwrap_err();
    assert!(
        format!("{err:#}")
            .contains("policies[0]: azure_approvers needs DEPLOY_GATE_AZURE_DEVOPS_URL"),
        "{err:#}"
    );
    let with_azure = Settings {
        azure_devops_url: Some("https://vsrm.dev.azure.com/contoso".into()),
        azure_devops_pat: Some(crate::secret::Secret::new("pat")),
        ..policies
    };
    let printed = Config::from_settings(with_azure).unwrap().to_masked_toml();
    let reread: Settings = toml::from_str(&printed).expect("valid TOML settings");
    let source = reread.policies[0].azure_approvers.as_ref().unwrap();
    assert_eq!(source.group.as_deref(), Some("vssgp.U3Jl"));
}

#[test]
fn policies_and_groups_come_from_the_file_and_print_with_webhooks_masked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.toml");
    std::fs::write(
        &path,
        r#"
        workers = 2
        [groups]
        sre = ["ana@example.com"]
        [[policies]]
        team_project = "Devx"
        stage = "prod"
        require = [{ group = "sre", count = 1 }]
        reminders = ["4h"]
        escalate_after = "8h"
        escalate_to = "lead@example.com"
        slack_webhook = "https://hooks.slack.test/services/T0/B0/very-secret"
        "#,
    )
    .unwrap();
    let settings = Settings::from_toml_file(&path).unwrap();
    let merged = settings.overridden_by(Settings::default());
    let printed = Config::from_settings(merged).unwrap().to_masked_toml();
    assert!(!printed.contains("very-secret"), "{printed}");
    assert!(
        printed.contains("slack_webhook = \"[redacted]\""),
        "{printed}"
    );
    let reread: Settings = toml::from_str(&printed).expect("valid TOML settings");
    assert_eq!(reread.policies.len(), 1);
    assert_eq!(reread.groups["sre"], ["ana@example.com"]);
    assert_eq!(reread.policies[0].reminders, ["4h"]);
}

#[test]
fn several_api_keys_separated_by_commas_are_all_kept() {
    let settings = Settings {
        api_key: Some(Secret::new(
            "old-key-1-0123456789abcdef, new-key-2-0123456789abcdef",
        )),
        ..Settings::default()
    };
    let keys = Config::from_settings(settings).unwrap().api_keys;
    let keys: Vec<&str> = keys.iter().map(Secret::expose).collect();
    assert_eq!(
        keys,
        ["old-key-1-0123456789abcdef", "new-key-2-0123456789abcdef"]
    );
    let hole = Settings {
        api_key: Some(Secret::new("a,,b")),
        ..Settings::default()
    };
    let err = format!("{:#}", Config::from_settings(hole).unwrap_err());
    assert!(err.contains("DEPLOY_GATE_API_KEY"), "{err}");
}

#[test]
fn secrets_do_not_show_in_debug_output() {
    let settings = Settings {
        api_key: Some(Secret::new("hunter2-hunter2")),
        ..Settings::default()
    };
    assert!(!format!("{settings:?}").contains("hunter2"));
}

#[test]
fn environment_settings_override_the_file() {
    let file: Settings = toml::from_str("workers = 2\nmail_from = \"a@b.c\"").unwrap();
    let env = Settings {
        workers: Some(7),
        ..Settings::default()
    };
    let merged = file.overridden_by(env);
    assert_eq!(merged.workers, Some(7));
    assert_eq!(merged.mail_from.as_deref(), Some("a@b.c"));
}

#[test]
fn each_variable_is_the_file_key_upper_cased_with_the_prefix() {
    for definition in DEFINITIONS {
        let expected = format!("DEPLOY_GATE_{}", definition.name.to_uppercase());
        assert_eq!(definition.env, expected);
    }
}

#[test]
fn every_built_in_default_parses() {
    let effective = Settings::default().effective();
    assert!(effective.is_ok(), "{:#}", effective.unwrap_err());
}

#[test]
fn help_shows_every_variable_with_its_default_and_secrets_are_marked() {
    use clap::Args;

    let help = Settings::augment_args(clap::Command::new("deploy-gate"))
        .render_long_help()
        .to_string();
    for definition in DEFINITIONS {
        let flag = format!("--{} <", definition.name.replace('_', "-"));
        let at = help.find(&flag).unwrap_or_else(|| panic!("{flag} missing"));
        let entry = &help[at..];
        let entry = &entry[..entry.find("\n\n").unwrap_or(entry.len())];
        let entry = entry.split("[env:").next().unwrap_or_default();
        let fallback = match definition.default {
            Fallback::Value(value) => format!("[default: {value}]"),
            Fallback::Unset(meaning) => format!("[unset: {meaning}]"),
        };
        assert!(entry.contains(&fallback), "{flag}: {entry}");
        assert_eq!(entry.contains("[secret]"), definition.secret, "{flag}");
        assert!(
            help.contains(&format!("[env: {}=]", definition.env)),
            "{flag}"
        );
    }
}

#[test]
fn the_printed_configuration_has_a_line_for_every_setting() {
    let printed = Config::from_settings(Settings::default())
        .unwrap()
        .to_masked_toml();
    for definition in DEFINITIONS {
        let set = format!("{} = ", definition.name);
        // Unset, the line says what that means: the setting's fallback text.
        let unset = match definition.default {
            Fallback::Unset(meaning) => format!("# {} is not set: {meaning}", definition.name),
            Fallback::Value(_) => String::new(),
        };
        assert!(
            printed
                .lines()
                .any(|line| line.starts_with(&set) || line == unset),
            "{} missing:\n{printed}",
            definition.name
        );
    }
}

#[test]
fn a_value_of_the_wrong_kind_in_the_file_names_its_key() {
    for (text, key) in [
        ("approval_deadline = 48", "approval_deadline"),
        ("workers = \"many\"", "workers"),
        ("approval_deadline = \"soon\"", "approval_deadline"),
    ] {
        let err = toml::from_str::<Settings>(text).unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
    }
}

#[test]
fn trusted_proxy_hops_default_to_one_and_zero_is_refused() {
    let config = Config::from_settings(Settings::default()).unwrap();
    assert_eq!(config.rate_limits.trusted_proxy_hops, 1);
    let zero = Settings {
        trusted_proxy_hops: Some(0),
        ..Settings::default()
    };
    let err = format!("{:#}", Config::from_settings(zero).unwrap_err());
    assert!(err.contains("DEPLOY_GATE_TRUSTED_PROXY_HOPS"), "{err}");
}

#[test]
fn an_api_key_shorter_than_24_characters_is_refused_naming_the_variable() {
    for keys in ["k".repeat(23), format!("{},tiny", "k".repeat(24))] {
        let settings = Settings {
            api_key: Some(Secret::new(keys.clone())),
            ..Settings::default()
        };
        let err = format!("{:#}", Config::from_settings(settings).unwrap_err());
        assert!(err.contains("DEPLOY_GATE_API_KEY"), "{err}");
        assert!(!err.contains("tiny") && !err.contains("kkkk"), "{err}");
    }
    let settings = Settings {
        api_key: Some(Secret::new("k".repeat(24))),
        ..Settings::default()
    };
    assert_eq!(Config::from_settings(settings).unwrap().api_keys.len(), 1);
}

#[test]
fn an_smtp_password_needs_tls_unless_the_host_is_loopback_or_plaintext_is_allowed() {
    let accepted = |url: &str, allow: bool| {
        Config::from_settings(Settings {
            smtp_url: Some(Secret::new(url)),
            smtp_allow_plaintext: Some(allow),
            ..Settings::default()
        })
        .is_ok()
    };
    for url in [
        "smtp://u:p@mail.example.com?tls=required",
        "smtps://u:p@mail.example.com",
        "smtp://mail.example.com",
        "smtp://u@mail.example.com",
        "smtp://u:p@127.0.0.2:25",
        "smtp://u:p@LOCALHOST",
        "smtp://u:p@[::1]:25",
    ] {
        assert!(accepted(url, false), "{url}");
    }
    for url in [
        "smtp://u:p@mail.example.com",
        "smtp://u:p@mail.example.com?tls=opportunistic",
        "smtp://u:p@mail.example.com?tls=none&tls=required",
        "smtp://u:p@127.0.0.1.example.com",
        "smtp://u:p@localhost.example.com",
    ] {
        assert!(!accepted(url, false), "{url}");
        assert!(accepted(url, true), "{url} with plaintext allowed");
    }
}

#[test]
fn the_organization_url_is_derived_from_the_release_management_url_unless_set() {
    let derived = |release: &str| {
        let settings = Settings {
            azure_devops_url: Some(release.into()),
            azure_devops_pat: Some(Secret::new("pat-000")),
            ..Settings::default()
        };
        let azure = Config::from_settings(settings)
            .unwrap()
            .azure_devops
            .unwrap();
        assert_eq!(azure.api_version, "7.1");
        azure.org_url.to_string()
    };
    assert_eq!(
        derived("https://vsrm.dev.azure.com/contoso"),
        "https://dev.azure.com/contoso"
    );
    assert_eq!(
        derived("https://contoso.vsrm.visualstudio.com/"),
        "https://contoso.visualstudio.com/"
    );
    assert_eq!(
        derived("https://tfs.example.com/tfs/Coll"),
        "https://tfs.example.com/tfs/Coll"
    );
    let settings = Settings {
        azure_devops_url: Some("https://vsrm.dev.azure.com/contoso".into()),
        azure_devops_pat: Some(Secret::new("pat-000")),
        azure_devops_org_url: Some("http://127.0.0.1:9/org".into()),
        azure_devops_api_version: Some("6.0".into()),
        ..Settings::default()
    };
    let azure = Config::from_settings(settings)
        .unwrap()
        .azure_devops
        .unwrap();
    assert_eq!(azure.org_url.as_str(), "http://127.0.0.1:9/org");
    assert_eq!(azure.api_version, "6.0");
}

/// A folder holding `name` with `text`.
fn secret_file(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// The environment `variables` as `Settings::with_secret_files` reads it.
fn environment(
    given: Settings,
    variables: &[(&str, &std::path::Path)],
) -> anyhow::Result<Settings> {
    given.with_secret_files(
        |name| {
            variables
                .iter()
                .find(|(variable, _)| *variable == name)
                .map(|(_, path)| path.as_os_str().to_owned())
        },
        |_| false,
    )
}

/// The line `deploy-gate config` prints for `key`.
fn printed_line(settings: Settings, key: &str) -> String {
    let printed = Config::from_settings(settings).unwrap().to_masked_toml();
    printed
        .lines()
        .find(|line| line.starts_with(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key}:\n{printed}"))
        .to_owned()
}

#[test]
fn a_secret_variable_file_gives_the_value_without_its_trailing_newline() {
    for (written, read) in [
        ("file-token-secret-0123\n", "file-token-secret-0123"),
        ("file-token-secret-0123\r\n", "file-token-secret-0123"),
        ("file-token-secret-0123", "file-token-secret-0123"),
        // Only one newline is the file's end; a second belongs to the value.
        ("file-token-secret-0123\n\n", "file-token-secret-0123\n"),
    ] {
        let (_dir, path) = secret_file("token", written);
        let settings = environment(
            Settings::default(),
            &[("DEPLOY_GATE_TOKEN_SECRET_FILE", &path)],
        )
        .unwrap();
        assert_eq!(
            settings.token_secret.as_ref().map(Secret::expose),
            Some(read),
            "{written:?}"
        );
        let line = printed_line(settings, "token_secret");
        assert!(!line.contains("file-token-secret"), "{line}");
        assert!(
            line.ends_with(&format!("# from: environment file {}", path.display())),
            "{line}"
        );
    }
}

#[test]
fn a_secret_given_by_its_variable_and_its_file_variable_names_both() {
    let (_dir, path) = secret_file("key", "file-key-0123456789abcdefgh");
    let given = Settings {
        api_key: Some(Secret::new("env-key-0123456789abcdefgh")),
        ..Settings::default()
    };
    let err = format!(
        "{:#}",
        environment(given, &[("DEPLOY_GATE_API_KEY_FILE", &path)]).unwrap_err()
    );
    assert!(
        err.contains("DEPLOY_GATE_API_KEY and DEPLOY_GATE_API_KEY_FILE"),
        "{err}"
    );
}

#[test]
fn an_unreadable_secret_file_names_its_path_and_variable() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-secret");
    let err = format!(
        "{:#}",
        environment(
            Settings::default(),
            &[("DEPLOY_GATE_HOOK_SECRET_FILE", &missing)]
        )
        .unwrap_err()
    );
    assert!(err.contains("DEPLOY_GATE_HOOK_SECRET_FILE"), "{err}");
    assert!(err.contains(&missing.display().to_string()), "{err}");
}

#[test]
fn only_secret_settings_have_a_file_form() {
    let (_dir, path) = secret_file("workers", "9\n");
    let settings =
        environment(Settings::default(), &[("DEPLOY_GATE_WORKERS_FILE", &path)]).unwrap();
    assert_eq!(settings.workers, None);
}

#[test]
fn the_toml_file_names_a_secret_file_relative_to_its_folder() {
    let (dir, path) = secret_file("pat", "pat-from-a-file\n");
    let settings = Settings::from_toml_str(
        "azure_devops_url = \"https://vsrm.dev.azure.com/contoso\"\n\
         azure_devops_pat_file = \"pat\"\n\
         api_key = \"toml-key-0123456789abcdefgh\"\n",
        dir.path(),
    )
    .unwrap();
    assert_eq!(
        settings.azure_devops_pat.as_ref().map(Secret::expose),
        Some("pat-from-a-file")
    );
    let pat = printed_line(settings.clone(), "azure_devops_pat");
    assert!(
        pat.ends_with(&format!("# from: config file's file {}", path.display())),
        "{pat}"
    );
    let key = printed_line(settings, "api_key");
    assert!(key.ends_with("# from: config file"), "{key}");
}

#[test]
fn a_secret_given_by_both_toml_keys_or_an_unreadable_toml_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let both = Settings::from_toml_str(
        "hook_secret = \"inline\"\nhook_secret_file = \"hook\"\n",
        dir.path(),
    )
    .unwrap_err();
    let both = format!("{both:#}");
    assert!(both.contains("hook_secret and hook_secret_file"), "{both}");
    let missing =
        Settings::from_toml_str("hook_secret_file = \"absent\"\n", dir.path()).unwrap_err();
    let missing = format!("{missing:#}");
    assert!(missing.contains("hook_secret_file"), "{missing}");
    assert!(
        missing.contains(&dir.path().join("absent").display().to_string()),
        "{missing}"
    );
    let not_secret = Settings::from_toml_str("workers_file = \"w\"\n", dir.path());
    assert!(not_secret.is_err(), "only secrets have a _file key");
}

#[test]
fn the_environment_overrides_the_toml_file_whichever_form_each_uses() {
    let (dir, toml_file) = secret_file("toml-secret", "toml-file-secret-0123\n");
    let (_env_dir, env_file) = secret_file("env-secret", "env-file-secret-01234\n");
    for (toml, variable_file, expected, source) in [
        (
            "token_secret_file = \"toml-secret\"",
            Some(&env_file),
            "env-file-secret-01234",
            format!("environment file {}", env_file.display()),
        ),
        (
            "token_secret = \"toml-value-secret-0123\"",
            Some(&env_file),
            "env-file-secret-01234",
            format!("environment file {}", env_file.display()),
        ),
        (
            "token_secret_file = \"toml-secret\"",
            None,
            "toml-file-secret-0123",
            format!("config file's file {}", toml_file.display()),
        ),
    ] {
        let file = Settings::from_toml_str(toml, dir.path()).unwrap();
        let variables: Vec<(&str, &std::path::Path)> = variable_file
            .iter()
            .map(|path| ("DEPLOY_GATE_TOKEN_SECRET_FILE", path.as_path()))
            .collect();
        let env = environment(Settings::default(), &variables).unwrap();
        let merged = file.overridden_by(env);
        assert_eq!(
            merged.token_secret.as_ref().map(Secret::expose),
            Some(expected),
            "{toml}"
        );
        let line = printed_line(merged, "token_secret");
        assert!(
            line.ends_with(&format!("# from: {source}")),
            "{toml}: {line}"
        );
    }
    // The plain variable beats the file's `_file` key too.
    let file = Settings::from_toml_str("token_secret_file = \"toml-secret\"", dir.path()).unwrap();
    let env = environment(
        Settings {
            token_secret: Some(Secret::new("env-value-secret-0123")),
            ..Settings::default()
        },
        &[],
    )
    .unwrap();
    let line = printed_line(file.overridden_by(env), "token_secret");
    assert!(line.ends_with("# from: environment"), "{line}");
}

#[test]
fn a_secret_left_at_its_default_says_so() {
    let line = printed_line(Settings::default(), "database_url");
    assert!(line.ends_with("# from: default"), "{line}");
}

#[test]
fn a_policy_requiring_sign_in_needs_the_provider_and_the_provider_needs_a_client_id() {
    let requiring: Settings =
        toml::from_str("[[policies]]\nteam_project = \"Devx\"\nrequire_sign_in = true\n").unwrap();
    let err = format!(
        "{:#}",
        Config::from_settings(requiring.clone()).unwrap_err()
    );
    assert!(err.contains("DEPLOY_GATE_OIDC_ISSUER"), "{err}");
    let issuer_alone = Settings {
        oidc_issuer: Some("https://login.microsoftonline.com/t1/v2.0".into()),
        ..requiring.clone()
    };
    let err = format!(
        "{:#}",
        Config::from_settings(issuer_alone.clone()).unwrap_err()
    );
    assert!(err.contains("DEPLOY_GATE_OIDC_CLIENT_ID"), "{err}");
    let complete = Settings {
        oidc_client_id: Some("app-1".into()),
        oidc_tenants: Some(" T1 , t2,".into()),
        ..issuer_alone
    };
    let config = Config::from_settings(complete).unwrap();
    let sign_in = config.sign_in.expect("sign-in configured");
    assert_eq!(sign_in.tenants, ["t1", "t2"]);
    assert!(config.policies.policies()[0].sign_in);
}
