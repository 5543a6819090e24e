//! Pod subresources without containers behind them: `pods/log` returns made-up lines (and with
//! `follow=true` streams a new one every 200 ms until the client goes away); `pods/exec` speaks the
//! websocket remote-command protocol (v5/v4.channel.k8s.io) and answers any command with its echo,
//! except `cat`, which copies stdin to stdout until stdin closes (a stream that stays open).

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request};
use axum::response::Response;
use serde_json::{Value, json};

use super::handlers::{Ctx, stream_response};
use super::object;
use super::resources::PODS;
use super::status::ApiError;

const SEEDED_LINES: usize = 5;
const FOLLOW_EVERY: Duration = Duration::from_millis(200);

/// The container a request addresses: `container=` or the pod's only (or default) container.
fn container(ctx: &Ctx) -> Result<String, ApiError> {
    let pod = ctx.app.store.get(PODS, &ctx.ns, ctx.name()).ok_or_else(|| ctx.not_found())?;
    let names: Vec<String> =
        pod.pointer("/spec/containers").and_then(Value::as_array).into_iter().flatten().filter_map(|c| c["name"].as_str().map(str::to_string)).collect();
    let default = pod.pointer("/metadata/annotations/kubectl.kubernetes.io~1default-container").and_then(Value::as_str);
    match ctx.query.get("container").filter(|c| !c.is_empty()).or(default) {
        Some(c) if names.iter().any(|n| n == c) => Ok(c.to_string()),
        Some(c) => Err(ApiError::bad_request(format!("container {c} is not valid for pod {}", ctx.name()))),
        None if names.len() == 1 => Ok(names[0].clone()),
        None => Err(ApiError::bad_request(format!("a container name must be specified for pod {}, choose one of: [{}]", ctx.name(), names.join(" ")))),
    }
}

pub fn logs(ctx: &Ctx) -> Result<Response, ApiError> {
    let container = container(ctx)?;
    let (pod, timestamps) = (ctx.name().to_string(), ctx.query.flag("timestamps"));
    let line = move |n: usize| {
        let text = format!("{pod} {container}: log line {n}\n");
        if timestamps { format!("{} {text}", object::now()) } else { text }
    };
    let tail = ctx.query.get("tailLines").and_then(|t| t.parse::<usize>().ok()).unwrap_or(SEEDED_LINES);
    let first: String = (1..=SEEDED_LINES).skip(SEEDED_LINES.saturating_sub(tail)).map(&line).collect();
    if !ctx.query.flag("follow") {
        return Ok(stream_response("text/plain", Body::from(first)));
    }
    // Dropped (and so stopped) when the client goes away: hyper drops the body of a closed connection.
    let stream = futures::stream::unfold((Some(first), SEEDED_LINES), move |(first, n)| {
        let line = line.clone();
        async move {
            if let Some(first) = first {
                return Some((Ok::<_, Infallible>(Bytes::from(first)), (None, n)));
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
            Some((Ok(Bytes::from(line(n + 1))), (None, n + 1)))
        }
    });
    Ok(stream_response("text/plain", Body::from_stream(stream)))
}

/// `pods/portforward` over a websocket tunnelling SPDY (kubectl 1.31+; see [`super::spdy`]): every
/// port of the pod echoes what it receives.
pub async fn port_forward(ctx: &Ctx, req: Request) -> Result<Response, ApiError> {
    ctx.app.store.get(PODS, &ctx.ns, ctx.name()).ok_or_else(|| ctx.not_found())?;
    let (mut parts, _) = req.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &()).await.map_err(|_| {
        ApiError::bad_request("Upgrade request required (this test double speaks port-forward as SPDY/3.1+portforward.k8s.io over a websocket only)")
    })?;
    tracing::debug!(pod = ctx.name(), "kube-test-apiserver: port-forward");
    Ok(upgrade.protocols([super::spdy::PROTOCOL]).on_upgrade(super::spdy::port_forward))
}

/// Channels of the remote-command protocol: a message is one channel byte and the data; v5 adds 255,
/// whose data names a channel the sender closes.
const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const CLOSE: u8 = 255;

pub async fn exec(ctx: &Ctx, req: Request) -> Result<Response, ApiError> {
    let container = container(ctx)?;
    let command: Vec<String> = ctx.query.all("command").map(str::to_string).collect();
    if command.is_empty() {
        return Err(ApiError::bad_request("you must specify at least 1 command"));
    }
    let (mut parts, _) = req.into_parts();
    let upgrade = WebSocketUpgrade::from_request_parts(&mut parts, &()).await.map_err(|_| {
        // SPDY (kubectl's fallback) is not implemented: only websockets.
        ApiError::bad_request("Upgrade request required (this test double speaks the websocket protocols v5.channel.k8s.io and v4.channel.k8s.io)")
    })?;
    // `echo a b` prints `a b`; any other command prints itself, so that tests can see what ran.
    let output = match command.split_first() {
        Some((first, args)) if first == "echo" => args.join(" "),
        _ => command.join(" "),
    } + "\n";
    let (stdout, stderr) = (ctx.query.flag("stdout"), ctx.query.flag("stderr"));
    let cat = command == ["cat"] && ctx.query.flag("stdin");
    tracing::debug!(pod = ctx.name(), %container, ?command, "kube-test-apiserver: exec");
    Ok(upgrade.protocols(["v5.channel.k8s.io", "v4.channel.k8s.io"]).on_upgrade(move |socket| async move {
        let ran = if cat { run_cat(socket).await } else { run_exec(socket, output, stdout, stderr).await };
        if let Err(e) = ran {
            tracing::debug!(error = %e, "kube-test-apiserver: exec stream ended early");
        }
    }))
}

fn frame(channel: u8, data: &[u8]) -> Message {
    Message::Binary([&[channel][..], data].concat().into())
}

/// `cat`: what arrives on stdin (channel 0) goes back on stdout, until stdin is closed (v5's close
/// message on channel 255) or the connection goes; then the command succeeds.
async fn run_cat(mut socket: WebSocket) -> Result<(), axum::Error> {
    while let Some(message) = socket.recv().await {
        match message? {
            Message::Binary(data) => match data.split_first() {
                Some((&STDIN, input)) if !input.is_empty() => socket.send(frame(STDOUT, input)).await?,
                Some((&CLOSE, [STDIN])) => break,
                _ => {}
            },
            Message::Close(_) => return Ok(()),
            _ => {}
        }
    }
    finish(socket).await
}

async fn run_exec(mut socket: WebSocket, output: String, stdout: bool, stderr: bool) -> Result<(), axum::Error> {
    if stdout {
        socket.send(frame(STDOUT, output.as_bytes())).await?;
    } else if stderr {
        socket.send(frame(STDERR, output.as_bytes())).await?;
    }
    // A moment between the output and the exit status, as a real command's exit comes after its output:
    // kubectl stops copying the output once it reads the status, and under load it could end with the
    // output frame still unread (seen: `kubectl exec … echo hello` printing nothing).
    tokio::time::sleep(Duration::from_millis(50)).await;
    finish(socket).await
}

/// A Success `Status` on the error channel, then the close.
async fn finish(mut socket: WebSocket) -> Result<(), axum::Error> {
    let success = json!({ "metadata": {}, "status": "Success" }).to_string();
    socket.send(frame(ERROR, success.as_bytes())).await?;
    socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "".into() }))).await?;
    // Let the client read everything and answer the close before the connection goes.
    let drain = async {
        while let Some(Ok(message)) = socket.recv().await {
            if matches!(message, Message::Close(_)) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
    Ok(())
}
