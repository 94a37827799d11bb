//! Issue 13, rows 9 and 10 (outputs that cannot be written, a directory as the data
//! file) and the messages: no raw control bytes echoed, the real target named,
//! limits raised in the config.

use super::*;

// ---- row 9: an output path that cannot be written ------------------------------------------

#[test]
fn row09_outputs_that_cannot_be_written_are_refused_before_training() {
    let base = dir("row09");
    std::fs::write(base.join("plain"), b"a file").unwrap();
    let under_file = p(&base.join("plain")).to_string() + "/sub";
    let cases: Vec<(String, Vec<String>)> = vec![
        (
            format!("\n[callbacks.tensorboard]\nlog_dir = \"{under_file}/tb\"\n"),
            vec![
                "callbacks.tensorboard.log_dir".into(),
                "expected a directory".into(),
            ],
        ),
        (
            format!("log_file = \"{under_file}/train.log\"\n"),
            vec![
                "callbacks.progress.log_file".into(),
                "expected a directory".into(),
            ],
        ),
        (
            format!("\n[callbacks.checkpoint]\nfile = \"{}\"\n", p(&base)),
            vec!["callbacks.checkpoint.file".into(), "is a directory".into()],
        ),
    ];
    for (k, (extra, needles)) in cases.iter().enumerate() {
        let (d, cfg) = setup(&format!("row09-{k}"), 30, "2", "1", extra);
        let o = rntk(&["train", p(&cfg)]);
        let n: Vec<&str> = needles.iter().map(String::as_str).collect();
        assert_user_error(&o, &n);
        assert!(
            text(&o.stdout).is_empty(),
            "trained anyway: {}",
            text(&o.stdout)
        );
        assert!(!d.join("m.model").exists());
    }
    // the model output itself
    let (d, cfg) = setup("row09-output", 30, "2", "1", "");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(p(&d.join("m.model")), &format!("{under_file}/m.model"));
    std::fs::write(&cfg, body).unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert_user_error(
        &o,
        &["train.output", "plain is a file, expected a directory"],
    );
    assert!(text(&o.stdout).is_empty(), "{}", text(&o.stdout));
    // an output over the training data, or two outputs on one file
    let (d, cfg) = setup("row09-same", 30, "2", "1", "");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(p(&d.join("m.model")), p(&d.join("train.ctf")));
    std::fs::write(&cfg, body).unwrap();
    assert_user_error(
        &rntk(&["train", p(&cfg)]),
        &["train.output", "data file of readers.train"],
    );
}

// ---- row 10: a directory given as the CTF file -----------------------------------------------

#[test]
fn row10_a_directory_as_the_data_file_says_so() {
    let (d, cfg) = setup("row10", 30, "2", "1", "");
    let body = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace(p(&d.join("train.ctf")), p(&d));
    std::fs::write(&cfg, body).unwrap();
    let err = assert_user_error(
        &rntk(&["train", p(&cfg)]),
        &["readers.train.file", "is a directory, expected a CTF file"],
    );
    assert!(!err.contains("os error 19"), "{err}");
    let (m, _) = trained_model("row10-eval");
    assert_user_error(
        &rntk(&["eval", p(&m), "--input", p(&d)]),
        &["--input", "is a directory, expected a CTF file"],
    );
    assert_user_error(
        &rntk(&["info", p(&d)]),
        &["is a directory, expected a model file"],
    );
}

// ---- messages -----------------------------------------------------------------------

#[test]
fn garbage_configs_are_not_echoed_to_the_terminal() {
    let d = dir("garbage");
    let cfg = d.join("g.toml");
    // binary bytes: not UTF-8
    std::fs::write(&cfg, b"\x1b[2J\x1b[31m\x00\x07\xff\xfe garbage").unwrap();
    assert_user_error(&rntk(&["train", p(&cfg)]), &["g.toml:1", "not UTF-8 text"]);
    // UTF-8 with escape sequences inside a key and a value
    std::fs::write(
        &cfg,
        "[train]\nx\u{1b}[2J = 1\ny = \"\u{1b}]0;owned\u{7}\"\n",
    )
    .unwrap();
    let err = assert_user_error(&rntk(&["train", p(&cfg)]), &["g.toml:"]);
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    // a directory, and an endless device, as the config
    assert_user_error(
        &rntk(&["train", p(&d)]),
        &["is a directory, expected a TOML config"],
    );
    let o = bounded(&["train", "/dev/zero"], &[], Stdio::null());
    assert_user_error(
        &o,
        &[
            "/dev/zero",
            "longer than 16777216 bytes",
            "RNTK_MAX_CONFIG_BYTES",
        ],
    );
}

#[test]
fn errors_name_the_real_target_not_a_temporary_file() {
    let d = dir("target-name");
    let out = d.join("no/such/folder/lstm.rntk");
    let o = rntk(&["import-cntk", p(&cntk_fixture("lstm")), "-o", p(&out)]);
    let err = assert_user_error(&o, &["lstm.rntk"]);
    assert!(!err.contains(".tmp-"), "{err}");
}

#[test]
fn limits_can_be_raised_in_the_config() {
    // a 2^20-element Dense output is over a lowered limit, then allowed by [limits]
    let (d, cfg) = setup(
        "limits",
        20,
        "1048577",
        "1",
        "\n[limits]\nmax_sample_elements = 1048576\n",
    );
    assert_user_error(
        &rntk(&["train", p(&cfg)]),
        &[
            "model.layers[1] (Dense)",
            "(3, 1048577)",
            "limit of 1048576",
        ],
    );
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        body.replace(
            "max_sample_elements = 1048576",
            "max_sample_elements = 4194304",
        ),
    )
    .unwrap();
    let body = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        body.replace("max_epochs = 2", "max_epochs = 1")
            .replace("epoch_size = 200", "epoch_size = 20"),
    )
    .unwrap();
    let o = rntk(&["train", p(&cfg)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(d.join("m.model").exists());
    // an unknown limit is named
    std::fs::write(
        &cfg,
        body.replace("max_sample_elements = 4194304", "max_colours = 3"),
    )
    .unwrap();
    assert_user_error(&rntk(&["train", p(&cfg)]), &["max_colours"]);
}
