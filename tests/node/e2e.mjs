// End-to-end run of the official `openai` Node SDK against a running azproxy gateway.
//
// Usage: node tests/node/e2e.mjs <gateway base URL> [key]
//   (or AZPROXY_URL / AZPROXY_KEY in the environment).
// Prints one JSON object to stdout: one entry per call, either its results or
// {"error": "..."} when the call threw, so the Python test can say which one failed.
// tests/test_node_sdk_functional.py runs it and checks what the emulator received.

import { createHash } from "node:crypto";

import OpenAI, { AzureOpenAI, toFile } from "openai";

const gateway = (process.argv[2] ?? process.env.AZPROXY_URL ?? "").replace(/\/+$/, "");
const apiKey = process.argv[3] ?? process.env.AZPROXY_KEY ?? "";
const apiVersion = process.env.AZPROXY_AZURE_API_VERSION ?? "2025-04-01-preview";
if (!gateway || !apiKey) {
  console.error("usage: node e2e.mjs <gateway base URL> <key> (or AZPROXY_URL, AZPROXY_KEY)");
  process.exit(2);
}

const MESSAGES = [{ role: "user", content: "hi" }];
const TIMEOUT_MS = 15_000;

/** A valid 16-bit mono PCM WAV: `seconds` of a 440 Hz square wave at `rate` Hz. */
function wav(seconds, rate = 16_000) {
  const frames = Math.round(seconds * rate);
  const data = Buffer.alloc(frames * 2);
  const period = Math.floor(rate / 440);
  for (let i = 0; i < frames; i++) {
    data.writeInt16LE(i % period < period / 2 ? 8000 : -8000, i * 2);
  }
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + data.length, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16); // fmt chunk size
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(rate, 24);
  header.writeUInt32LE(rate * 2, 28); // byte rate
  header.writeUInt16LE(2, 32); // block align
  header.writeUInt16LE(16, 34); // bits per sample
  header.write("data", 36, "ascii");
  header.writeUInt32LE(data.length, 40);
  return Buffer.concat([header, data]);
}

function describe(error) {
  const described = { error: `${error?.name ?? "Error"}: ${error?.message ?? String(error)}` };
  if (error?.status !== undefined) described.status = error.status;
  if (error?.code !== undefined) described.code = error.code;
  return described;
}

const results = {};

/** Run one call; a failure is recorded, not thrown, so every call gets its turn. */
async function step(name, call) {
  try {
    results[name] = await call();
  } catch (error) {
    results[name] = describe(error);
  }
}

const client = new OpenAI({
  baseURL: `${gateway}/v1`,
  apiKey,
  maxRetries: 0,
  timeout: TIMEOUT_MS,
});

await step("chat", async () => {
  const completion = await client.chat.completions.create({ model: "gpt-4o", messages: MESSAGES });
  return {
    content: completion.choices[0].message.content,
    object: completion.object,
    model: completion.model,
    finish_reason: completion.choices[0].finish_reason,
  };
});

await step("chat_stream", async () => {
  const stream = await client.chat.completions.create({
    model: "gpt-4o",
    messages: MESSAGES,
    stream: true,
  });
  const deltas = [];
  const objects = new Set();
  const models = new Set();
  let chunks = 0;
  let withoutChoices = 0;
  for await (const chunk of stream) {
    chunks++;
    objects.add(chunk.object);
    models.add(chunk.model);
    if (chunk.choices.length === 0) {
      withoutChoices++;
      continue;
    }
    const content = chunk.choices[0].delta?.content;
    if (content) deltas.push(content);
  }
  return {
    deltas,
    chunks,
    without_choices: withoutChoices,
    objects: [...objects],
    models: [...models],
  };
});

await step("embeddings", async () => {
  const result = await client.embeddings.create({
    model: "text-embedding-ada-002",
    input: ["hello", "world"],
  });
  return {
    indexes: result.data.map((item) => item.index),
    dimensions: result.data.map((item) => item.embedding.length),
    distinct: result.data[0].embedding.join() !== result.data[1].embedding.join(),
  };
});

await step("models", async () => {
  const ids = [];
  for await (const model of client.models.list()) ids.push(model.id);
  return { ids };
});

await step("transcription", async () => {
  const audio = wav(1);
  // `file` before `model`: the Node SDK sends the form fields in this order.
  const file = await toFile(audio, "speech.wav", { type: "audio/wav" });
  const result = await client.audio.transcriptions.create({ file, model: "whisper" });
  return {
    text: result.text,
    size: audio.length,
    sha256: createHash("sha256").update(audio).digest("hex"),
  };
});

await step("images", async () => {
  const result = await client.images.generate({ model: "dall-e-3", prompt: "a cat" });
  return {
    count: result.data.length,
    url: result.data[0].url,
    revised_prompt: result.data[0].revised_prompt,
  };
});

await step("responses", async () => {
  const response = await client.responses.create({ model: "gpt-4o", input: "Say hi" });
  return {
    id: response.id,
    object: response.object,
    status: response.status,
    output_text: response.output_text,
  };
});

const azure = new AzureOpenAI({
  endpoint: gateway,
  apiKey,
  apiVersion,
  deployment: "gpt-4o",
  maxRetries: 0,
  timeout: TIMEOUT_MS,
});

await step("azure_chat", async () => {
  const completion = await azure.chat.completions.create({ model: "gpt-4o", messages: MESSAGES });
  return {
    content: completion.choices[0].message.content,
    object: completion.object,
    model: completion.model,
  };
});

process.stdout.write(`${JSON.stringify(results)}\n`);
