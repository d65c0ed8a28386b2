// Blob encryption as upstream's `--encrypt` does it (utils/src/crypt.rs): AES-128-XTS with one
// random 32-byte key and one random 16-byte IV per blob, kept in the bootstrap's blob table.
// Each chunk (after compression), the blob.meta chunk table (after compression) and the 4 KiB
// blob.meta header are encrypted on their own, each as one XTS data unit with that same IV as
// the tweak. XTS needs at least 16 bytes: shorter data is padded to 18 bytes (the pad byte
// repeated, then the magic 0x78 0x90) and the padding is stripped after decryption.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { NydusError } from '../errors.js';

/** crypt::Algorithm ids (blob table cipher_algo). */
export const CIPHER_NONE = 0;
export const CIPHER_AES128XTS = 1;
export const CIPHER_NAMES = ['none', 'aes128xts', 'aes256xts', 'aes256gcm'];

const KEY_LENGTH = 32;
const IV_LENGTH = 16;
const UNIT = 16;
const PADDED = 18;
const PAD_MAGIC = [0x78, 0x90];
/** OpenSSL's XTS refuses a data unit of more than 2^20 blocks. */
const UNIT_MAX = UNIT << 20;

export interface BlobCipher {
  /** 32 bytes: the two AES-128 keys of XTS. */
  key: Buffer;
  /** 16 bytes: the XTS tweak of every unit of the blob. */
  iv: Buffer;
}

const halvesEqual = (k: Buffer) => k.subarray(0, k.length / 2).equals(k.subarray(k.length / 2));

/** A fresh key and IV; a key whose halves are equal (OpenSSL refuses it) is changed as upstream's tweak_key_for_xts does. */
export function newBlobCipher(): BlobCipher {
  const key = randomBytes(KEY_LENGTH);
  if (halvesEqual(key)) key.fill(key[KEY_LENGTH / 2] === 0xa5 ? 0x5a : 0xa5, 0, KEY_LENGTH / 2);
  return { key, iv: randomBytes(IV_LENGTH) };
}

/**
 * The cipher a blob-table entry describes, checked: `what` names the entry in messages. Undefined
 * for an entry without encryption.
 */
export function blobCipherFrom(algo: number, key: Buffer, iv: Buffer, what: string): BlobCipher | undefined {
  if (algo === CIPHER_NONE) return undefined;
  if (algo !== CIPHER_AES128XTS) {
    const name = CIPHER_NAMES[algo];
    throw new NydusError(name ? 'UNSUPPORTED' : 'FORMAT', `${what}.cipher_algo: ${name ? `${name} is not supported (only aes128xts)` : `${algo} is not a cipher algorithm`}`);
  }
  if (key.length !== KEY_LENGTH || iv.length !== IV_LENGTH) throw new NydusError('FORMAT', `${what}: the cipher key must be ${KEY_LENGTH} bytes and the IV ${IV_LENGTH}`);
  if (halvesEqual(key)) throw new NydusError('FORMAT', `${what}.blob_meta_digest: the AES-XTS key has two equal halves (not a key XTS accepts)`);
  return { key, iv };
}

export function encrypt(c: BlobCipher, data: Uint8Array): Buffer {
  let unit = data;
  if (data.byteLength < UNIT) {
    const padded = Buffer.alloc(PADDED, UNIT - data.byteLength);
    padded.set(data);
    padded.set(PAD_MAGIC, UNIT);
    unit = padded;
  }
  if (unit.byteLength > UNIT_MAX) throw new NydusError('USAGE', `cannot encrypt ${unit.byteLength} bytes as one AES-XTS unit (at most ${UNIT_MAX})`);
  const e = createCipheriv('aes-128-xts', c.key, c.iv);
  return Buffer.concat([e.update(unit), e.final()]);
}

/** Decrypts one unit; `what` names it in messages. */
export function decrypt(c: BlobCipher, data: Uint8Array, what: string): Buffer {
  if (data.byteLength < UNIT || data.byteLength > UNIT_MAX) {
    throw new NydusError('FORMAT', `${what}: ${data.byteLength} encrypted bytes (AES-XTS units are ${UNIT} to ${UNIT_MAX} bytes)`);
  }
  let out: Buffer;
  try {
    const d = createDecipheriv('aes-128-xts', c.key, c.iv);
    out = Buffer.concat([d.update(data), d.final()]);
  } catch (e) {
    throw new NydusError('FORMAT', `${what} does not decrypt: ${(e as Error).message.split('\n')[0]}`);
  }
  // Upstream's rule: 18 bytes ending in the magic are a padded unit.
  if (out.length === PADDED && out[UNIT] === PAD_MAGIC[0] && out[UNIT + 1] === PAD_MAGIC[1]) {
    const pad = out[UNIT - 1];
    if (pad >= UNIT) throw new NydusError('FORMAT', `${what}: invalid AES-XTS padding ${pad}`);
    return out.subarray(0, UNIT - pad);
  }
  return out;
}
