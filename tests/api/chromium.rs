// A headless Chromium driven through chromedriver (fantoccini), for the browser tests:
// start a session at a window width, take screenshots, and measure the layout as a person
// sees it (horizontal overflow, words broken across lines, elements on screen). Without
// chromedriver on the PATH (`.ci/run` installs Debian's chromium and chromium-driver) the
// tests say SKIPPED.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::Engine;
use fantoccini::{Client, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::helpers::HANG_GUARD;

/// Set to `1` to write the screenshots the README shows into `docs/screenshots/`;
/// otherwise they go to `target/screenshots/` with the other test artifacts.
const UPDATE_SCREENSHOTS: &str = "DEPLOY_GATE_UPDATE_SCREENSHOTS";

/// A chromedriver process and a headless Chromium session driven through it.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// chromedriver's address, for the DevTools commands WebDriver has no word for.
    driver_url: String,
}

impl Browser {
    /// A session with a 1000×900 window; see [`Browser::start_at`].
    pub async fn start(test: &str) -> Option<Browser> {
        Self::start_at(test, 1000, 900).await
    }

    /// Starts chromedriver and a headless session whose page is `width`×`height` CSS
    /// pixels, or `None` (with a SKIPPED note) when chromedriver is not installed.
    pub async fn start_at(test: &str, width: u32, height: u32) -> Option<Browser> {
        let Some(chromedriver) = find_on_path("chromedriver") else {
            eprintln!(
                "SKIPPED: {test}: chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--hide-scrollbars",
                            format!("--window-size={width},{height}")]}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = None;
        let deadline = tokio::time::Instant::now() + HANG_GUARD;
        while tokio::time::Instant::now() < deadline {
            match ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Some(Browser {
                        client,
                        driver,
                        driver_url: url,
                    });
                }
                Err(err) => last_error = Some(err),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut driver = driver;
        let _ = driver.kill();
        let _ = driver.wait();
        panic!("waited {HANG_GUARD:?} for a browser session: {last_error:?}");
    }

    /// Resizes the window so that the page is `width` CSS pixels wide, as on a phone
    /// (390) or a laptop (1280), and checks that the page sees that width.
    pub async fn resize_to(&self, width: u32, height: u32) {
        self.client.set_window_size(width, height).await.unwrap();
        let inner = self.script("return window.innerWidth").await;
        assert_eq!(inner, json!(width), "the page is {width} px wide");
    }

    /// Saves a screenshot of the current page as `target/screenshots/{name}.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        save_png(&artifact_dir(), name, &png);
    }

    /// Saves a screenshot of the element at `css` (the page cropped to it, however tall) as
    /// `docs/screenshots/{name}.png` when [`UPDATE_SCREENSHOTS`] is `1`, else under
    /// `target/screenshots/`, so a test run never rewrites the committed pictures.
    pub async fn screenshot_for_docs(&self, name: &str, css: &str) {
        let rect = self
            .client
            .execute(
                r#"const r = document.querySelector(arguments[0]).getBoundingClientRect();
                   return {x: r.left + window.scrollX, y: r.top + window.scrollY,
                           width: Math.ceil(r.width), height: Math.ceil(r.height), scale: 1};"#,
                vec![json!(css)],
            )
            .await
            .unwrap();
        let shot = self
            .devtools(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true, "clip": rect}),
            )
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("a screenshot"))
            .unwrap();
        let dir = match std::env::var(UPDATE_SCREENSHOTS).as_deref() {
            Ok("1") => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots"),
            _ => artifact_dir(),
        };
        save_png(&dir, name, &png);
    }

    /// Runs a Chrome DevTools Protocol command through chromedriver and returns its result.
    async fn devtools(&self, command: &str, params: Value) -> Value {
        let session = self.client.session_id().await.unwrap().expect("a session");
        let answer: Value = reqwest::Client::new()
            .post(format!(
                "{}/session/{session}/goog/cdp/execute",
                self.driver_url
            ))
            .json(&json!({"cmd": command, "params": params}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"].clone()
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn script(&self, script: &str) -> Value {
        self.client.execute(script, vec![]).await.unwrap()
    }

    /// How many CSS pixels the page is wider than the window (0 when nothing overflows).
    pub async fn horizontal_overflow(&self) -> i64 {
        let overflow = self
            .script("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        overflow.as_i64().unwrap()
    }

    /// The words inside the elements at `css` that the layout split across two lines
    /// (as "pend ing"), each with the text of its element.
    pub async fn words_broken_in(&self, css: &str) -> Vec<String> {
        let broken = self
            .client
            .execute(
                r#"const broken = [];
                   for (const element of document.querySelectorAll(arguments[0])) {
                     const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
                     for (let node = walker.nextNode(); node; node = walker.nextNode()) {
                       for (const word of node.data.matchAll(/\S+/g)) {
                         const range = document.createRange();
                         range.setStart(node, word.index);
                         range.setEnd(node, word.index + word[0].length);
                         const lines = new Set([...range.getClientRects()]
                           .filter(r => r.width > 0).map(r => Math.round(r.top)));
                         if (lines.size > 1) broken.push(`${word[0]} in "${element.textContent.trim()}"`);
                       }
                     }
                   }
                   return broken;"#,
                vec![json!(css)],
            )
            .await
            .unwrap();
        serde_json::from_value(broken).unwrap()
    }

    /// Whether every element at `css` (at least one) is displayed and lies within the
    /// window's width.
    pub async fn all_on_screen(&self, css: &str) -> bool {
        let on_screen = self
            .client
            .execute(
                r#"const all = [...document.querySelectorAll(arguments[0])];
                   return all.length > 0 && all.every(e => {
                     const r = e.getBoundingClientRect();
                     return r.width > 0 && r.height > 0 && r.left >= 0 && r.right <= window.innerWidth
                       && getComputedStyle(e).visibility === "visible";
                   });"#,
                vec![json!(css)],
            )
            .await
            .unwrap();
        on_screen == json!(true)
    }

    /// The element at `css`, which the page must have.
    pub async fn element(&self, css: &str) -> Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|_| panic!("{css} on the page"))
    }

    /// The elements at `css`.
    pub async fn elements(&self, css: &str) -> Vec<Element> {
        self.client.find_all(Locator::Css(css)).await.unwrap()
    }

    /// Clicks the element at `css`, then waits for the next page's `expected` element.
    pub async fn click_and_wait_for(&self, css: &str, expected: &str) {
        self.element(css).await.click().await.unwrap();
        self.client
            .wait()
            .for_element(Locator::Css(expected))
            .await
            .unwrap();
    }

    /// The text of the element at `css`.
    pub async fn text_of(&self, css: &str) -> String {
        self.element(css).await.text().await.unwrap()
    }

    /// Ends the session and chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `target/screenshots/`, where test runs leave their screenshots.
fn artifact_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("../screenshots")
}

fn save_png(dir: &std::path::Path, name: &str, png: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

pub fn find_on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| PathBuf::from(dir).join(program))
        .find(|path| path.is_file())
}
