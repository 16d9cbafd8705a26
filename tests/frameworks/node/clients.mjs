// openai-node and the OpenAI Agents SDK for JavaScript against Respond (run by test_openai_node.py).
// Usage: node clients.mjs <scenario>; env RESPOND_BASE_URL, RESPOND_TEST_ID. Prints one JSON object.
import OpenAI from 'openai';
import { zodTextFormat } from 'openai/helpers/zod';
import { z } from 'zod';

const MODEL = 'up/scripted';
const client = new OpenAI({
  baseURL: process.env.RESPOND_BASE_URL,
  apiKey: 'dummy-key',
  maxRetries: 0,
  timeout: 30_000,
  defaultHeaders: { 'X-Respond-Test-Id': process.env.RESPOND_TEST_ID },
});

const WEATHER_TOOL = {
  type: 'function',
  name: 'get_weather',
  description: 'Current weather for a city.',
  parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'],
                additionalProperties: false },
  strict: true,
};

async function toolsStreamed() {
  const first = client.responses.stream({ model: MODEL, input: 'Weather in Paris?', tools: [WEATHER_TOOL] });
  const types = [];
  let argumentDeltas = '';
  for await (const event of first) {
    types.push(event.type);
    if (event.type === 'response.function_call_arguments.delta') argumentDeltas += event.delta;
  }
  const r1 = await first.finalResponse();
  const call = r1.output.find((item) => item.type === 'function_call');
  const second = client.responses.stream({
    model: MODEL, previous_response_id: r1.id, tools: [WEATHER_TOOL],
    input: [{ type: 'function_call_output', call_id: call.call_id, output: JSON.stringify({ sky: 'sunny' }) }],
  });
  let text = '';
  second.on('response.output_text.delta', (event) => { text += event.delta; });
  const r2 = await second.finalResponse();
  return { types, argumentDeltas, call: { name: call.name, arguments: call.arguments, call_id: call.call_id },
           text, outputText: r2.output_text, status: r2.status };
}

async function structured() {
  const Weather = z.object({ city: z.string(), temperature: z.number(), sky: z.enum(['sunny', 'cloudy']) });
  const r = await client.responses.parse({
    model: MODEL, input: 'Weather in Paris as JSON.', text: { format: zodTextFormat(Weather, 'weather') },
  });
  return { parsed: r.output_parsed, format: r.text.format };
}

async function agentsHandoff() {
  const { Agent, run, tool, setDefaultOpenAIClient, setOpenAIAPI, setTracingDisabled } = await import('@openai/agents');
  setDefaultOpenAIClient(client);
  setOpenAIAPI('responses');
  setTracingDisabled(true);
  const calls = [];
  const getWeather = tool({
    name: 'get_weather', description: 'Current weather for a city.',
    parameters: z.object({ city: z.string() }),
    execute: async ({ city }) => { calls.push(city); return `sunny, 21 C in ${city}`; },
  });
  const Report = z.object({ city: z.string(), summary: z.string() });
  const weather = new Agent({ name: 'Weather agent', instructions: 'Answer about the weather.', model: MODEL,
                              tools: [getWeather], outputType: Report, handoffDescription: 'Knows the weather.' });
  const triage = new Agent({ name: 'Triage', instructions: 'Hand weather questions off.', model: MODEL,
                             handoffs: [weather] });
  const result = await run(triage, 'Weather in Paris?', { stream: true });
  const events = [];
  for await (const event of result) {
    if (event.type === 'run_item_stream_event') events.push(event.name);
  }
  await result.completed;
  return { finalOutput: result.finalOutput, lastAgent: result.lastAgent.name, calls, events };
}

const scenarios = { toolsStreamed, structured, agentsHandoff };
const name = process.argv[2];
try {
  const out = await scenarios[name]();
  process.stdout.write(JSON.stringify(out) + '\n');
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.stack || error) }) + '\n');
  process.exit(1);
}
