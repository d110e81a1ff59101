// The control socket's request line (src/agent/control/protocol.ts): every field is checked before
// the agent acts on it, so a malformed or hostile client gets a reason, never a half-read request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest } from '../../../src/agent/control/protocol.js';

test('parseRequest accepts rekey with a name and optional boolean ike/child flags', () => {
  assert.deepEqual(parseRequest('{"id":1,"cmd":"rekey","name":"t"}'), { id: 1, cmd: 'rekey', name: 't' });
  assert.deepEqual(parseRequest('{"id":2,"cmd":"rekey","name":"t","ike":true,"child":false}'), { id: 2, cmd: 'rekey', name: 't', ike: true, child: false });
});

test('parseRequest refuses flags that are not booleans and unknown commands, naming the field', () => {
  assert.equal(parseRequest('{"id":1,"cmd":"rekey","name":"t","ike":"yes"}'), 'ike must be true or false');
  assert.equal(parseRequest('{"id":1,"cmd":"rekey","name":"t","child":1}'), 'child must be true or false');
  assert.match(String(parseRequest('{"id":1,"cmd":"rekey-all"}')), /^unknown cmd; known: .*\brekey\b/);
  assert.equal(parseRequest('{"id":1,"cmd":"rekey","name":7}'), 'name must be a string');
  assert.equal(parseRequest('[1]'), 'not an object');
  assert.equal(parseRequest('{"id":"1","cmd":"rekey"}'), 'id must be an integer');
});
