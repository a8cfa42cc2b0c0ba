//! The audit console in a real headless Chromium (see `browser`): an auditor
//! signs in, searches, reads an account's timeline with a rename, an alias
//! change and a credential change, views it as of an earlier event, opens a
//! record, and sees another client's change appear live on the overview; a
//! user without rights, in a browser with JavaScript off, sees only itself.
//! Each page is saved as a screenshot in the test's temp dir.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::browser::{Browser, Options};
use super::support::{ADMIN_PASSWORD, TestServer};

const MARKUP: &str = "Help <b>desk</b> <script>document.title='owned'</script>";

/// alice's history: created with an alias and a password, renamed to alicia,
/// her alias renamed, her password replaced. Returns her id.
async fn history(server: &TestServer) -> String {
    let domain = server.domain("example.org").await;
    let id = server
        .account(json!({"@type": "User", "name": "alice", "domainId": domain, "description": MARKUP,
            "aliases": [{"name": "sales", "domainId": domain}],
            "credentials": [{"@type": "Password", "secret": "Correct-Horse-Battery-9"}]}))
        .await;
    for patch in [
        json!({"name": "alicia"}),
        json!({"aliases": [{"name": "support", "domainId": domain}]}),
        json!({"credentials": [{"@type": "Password", "secret": "Another-Horse-Battery-7"}]}),
    ] {
        let (_, r) = server.call("x:Account/set", json!({"update": {id.clone(): patch}})).await;
        assert!(r["updated"].get(&id).is_some(), "{r}");
    }
    id
}

/// The (before, after) of `field` in the timeline row of the first `event`.
async fn change(browser: &Browser, event: &str, field: &str) -> (String, String) {
    let row = format!("#timeline tr[data-event={event}] tr[data-field=\"{field}\"]");
    (browser.text(&format!("{row} td.before")).await, browser.text(&format!("{row} td.after")).await)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_auditor_follows_an_account_through_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let shots = dir.path().join("screenshots");
    let server = TestServer::start(&dir.path().join("data")).await;
    let id = history(&server).await;
    let browser = Browser::start(&shots, Options::default()).await;
    let base = &server.url;

    // Sign in: the overview.
    browser.sign_in(base, "admin", ADMIN_PASSWORD).await;
    assert_eq!(browser.text("h1").await, "Overview");
    assert_eq!(browser.texts(".cards dd").await[..3], ["1", "0", "1"], "accounts, groups, domains");
    assert!(browser.text("#chain").await.contains("Chain"));
    let checkpoint = browser.text("#checkpoint").await;
    let last = server.ledger.read().last_seq;
    assert!(checkpoint.starts_with(&format!("{last}:")), "verified through the end: {checkpoint}");
    browser.screenshot("console-overview").await;

    // Search.
    browser.goto(&format!("{base}/console/accounts")).await;
    browser.fill("#text", "alicia").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for("#accounts tbody tr").await;
    let rows = browser.texts("#accounts tbody tr").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(rows[0].contains("alicia@example.org"), "{rows:?}");
    // The description's markup is text: shown as typed, and it ran nothing.
    assert!(rows[0].contains("<script>document.title='owned'</script>"), "{rows:?}");
    assert_ne!(browser.client.title().await.unwrap(), "owned");
    browser.screenshot("console-directory").await;

    // The account page and its timeline.
    browser.click("#accounts tbody tr a").await;
    browser.wait_for("#timeline").await;
    assert_eq!(browser.text("h1").await, "alicia@example.org");
    assert!(browser.text("#state dd[data-field=description]").await.contains("<b>desk</b>"));
    assert!(browser.text("#state dd[data-field=credentials]").await.starts_with("Password"));
    let events: Vec<String> = browser.texts("#timeline > tbody > tr > td:nth-child(3)").await;
    let order: Vec<&str> = events.iter().map(|e| e.split_whitespace().next().unwrap_or_default()).collect();
    assert_eq!(
        events.iter().map(|e| e.trim().to_owned()).collect::<Vec<_>>(),
        [
            "Account created",
            "Alias added",
            "Credential added",
            "Account renamed rename",
            "Alias renamed rename",
            "Credential removed",
            "Credential added",
        ],
        "{order:?}"
    );
    assert_eq!(change(&browser, "AccountRenamed", "name").await, ("alice".into(), "alicia".into()));
    assert_eq!(
        change(&browser, "AccountRenamed", "emailAddress").await,
        ("alice@example.org".into(), "alicia@example.org".into())
    );
    assert_eq!(
        change(&browser, "AliasRenamed", "aliases").await,
        ("sales@example.org".into(), "support@example.org".into())
    );
    let (before, after) = change(&browser, "CredentialRemoved", "credentials").await;
    assert!(before.starts_with("Password ") && after == "none", "{before} → {after}");
    // The new password: shown as set, never its value or hash.
    let added = browser.texts("#timeline tr[data-event=CredentialAdded] tr[data-field$=secret] td.after").await;
    assert_eq!(added, ["set (hidden)", "set (hidden)"]);
    let page = browser.client.source().await.unwrap();
    assert!(!page.contains("Another-Horse") && !page.contains("argon2"), "no secret on the page");
    // Actors are linked; the fallback administrator is named.
    assert!(browser.text("#timeline tr[data-event=AccountRenamed] td:nth-child(4)").await.contains("admin"));
    browser.screenshot("console-account").await;

    // As of the creation commit: the old name and alias.
    let created = browser.wait_for("#timeline tr[data-event=AccountCreated]").await;
    let position: u64 = created.attr("data-position").await.unwrap().unwrap().parse().unwrap();
    browser.click("#timeline tr[data-event=CredentialAdded] td:last-child p a").await;
    browser.wait_for("#as-of").await;
    let banner = browser.text("#as-of").await;
    assert!(banner.contains(&format!("As of position {}", position + 2)), "{banner}");
    assert_eq!(browser.text("#state dd[data-field=name]").await, "alice");
    assert_eq!(browser.text("#state dd[data-field=aliases]").await, "sales@example.org");
    browser.screenshot("console-account-as-of").await;
    // The same through the form, by time: before anything existed.
    browser.fill("#asOf", "2000-01-01T00:00:00Z").await;
    browser.click("form.filters button[type=submit]").await;
    browser.wait_for("#no-state").await;

    // One record: its hashes and the other events of its commit.
    browser.goto(&format!("{base}/console/events/{position}")).await;
    assert!(browser.text("h1").await.contains("Account created"));
    assert_eq!(browser.text("#hash").await.len(), 64);
    let commit = browser.texts("#commit tbody tr").await;
    assert_eq!(commit.len(), 3, "created with its alias and password in one commit: {commit:?}");
    browser.screenshot("console-event").await;

    // Live: a change by another client appears on the overview within 2 s.
    browser.goto(&format!("{base}/console/")).await;
    let status = browser.wait_for("#live-status").await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while !status.text().await.unwrap().starts_with("Live") {
        assert!(Instant::now() < deadline, "the live list did not connect");
        tokio::task::yield_now().await;
    }
    let (_, r) = server.call("x:Account/set", json!({"update": {id.clone(): {"description": "Changed live"}}})).await;
    assert!(r["updated"].get(&id).is_some(), "{r}");
    let written = server.ledger.read().last_seq;
    let started = Instant::now();
    let row = format!("#latest tbody tr[data-position=\"{written}\"]");
    loop {
        if !browser.client.find_all(fantoccini::Locator::Css(&row)).await.unwrap().is_empty() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(2), "the new event did not appear within 2 s");
    }
    println!("live row appeared after {:?}", started.elapsed());
    assert!(browser.text(&row).await.contains("Account updated"));
    browser.screenshot("console-overview-live").await;

    // Narrow screens: the account page at 320 px wide has nothing wider than the window.
    browser.client.set_window_size(320, 900).await.unwrap();
    browser.goto(&format!("{base}/console/accounts/{id}")).await;
    browser.wait_for("#timeline").await;
    let overflow: Value = browser
        .client
        .execute("return document.documentElement.scrollWidth - window.innerWidth;", vec![])
        .await
        .unwrap();
    assert!(overflow.as_i64().unwrap() <= 0, "the page scrolls sideways at 320 px: {overflow}");
    // Each timeline row is a card as wide as the page, not a squeezed column.
    let width: Value = browser
        .client
        .execute(
            "return document.querySelector('#timeline td[data-label=Changes]').getBoundingClientRect().width;",
            vec![],
        )
        .await
        .unwrap();
    assert!(width.as_f64().unwrap() >= 250.0, "the changes column is {width} px wide at 320 px");
    browser.screenshot("console-account-narrow").await;

    // Sign out.
    browser.client.set_window_size(1280, 900).await.unwrap();
    browser.click("form.sign-out button").await;
    browser.wait_for("form.sign-in").await;
    browser.goto(&format!("{base}/console/accounts")).await;
    browser.wait_for("form.sign-in").await;
    browser.screenshot("console-sign-in").await;
    browser.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_rights_and_without_javascript_a_user_sees_only_itself() {
    let dir = tempfile::tempdir().unwrap();
    let shots = dir.path().join("screenshots");
    let server = TestServer::start(&dir.path().join("data")).await;
    let alice = history(&server).await;
    let domain = server.domain("other.example").await;
    let bob = server.account(json!({"@type": "User", "name": "bob", "domainId": domain})).await;
    let browser = Browser::start(&shots, Options { javascript: false, ..Options::default() }).await;
    let base = &server.url;

    // Keyboard only: the form is reachable and sent with Tab and Enter.
    browser.goto(&format!("{base}/console/")).await;
    browser.wait_for("#username").await.send_keys("alicia@example.org").await.unwrap();
    browser.wait_for("#secret").await.send_keys("Another-Horse-Battery-7\u{E007}").await.unwrap();
    browser.wait_for("form.sign-out").await;
    assert_eq!(browser.text("h1").await, "Overview");
    assert!(browser.client.find_all(fantoccini::Locator::Css("#latest")).await.unwrap().is_empty());
    assert_eq!(browser.texts(".cards dd").await, ["—", "—", "—", "—", "—"]);
    browser.screenshot("console-overview-user").await;

    // Her own account, timeline and all, without script.
    browser.click("main a[href^='/console/accounts/']").await;
    browser.wait_for("#timeline").await;
    assert_eq!(browser.text("h1").await, "alicia@example.org");
    assert_eq!(change(&browser, "AccountRenamed", "name").await, ("alice".into(), "alicia".into()));
    assert!(browser.client.find_all(fantoccini::Locator::Css("a[download]")).await.unwrap().is_empty());
    let _ = alice;

    // Nobody else.
    browser.goto(&format!("{base}/console/accounts/{bob}")).await;
    assert_eq!(browser.text("h1").await, "Not allowed");
    assert!(!browser.client.source().await.unwrap().contains("bob@other.example"));
    browser.goto(&format!("{base}/console/accounts")).await;
    assert_eq!(browser.text("h1").await, "Not allowed");
    browser.close().await;
    server.stop().await;
}
