/**
 * The seal-fence scenario (src/store/seal-fence.ts) for any backend several processes share:
 * store B holds a block of storage generation 1; store A writes until the seal limit moves it
 * to generation 2, and its re-encryption erases generation 1; B then writes. The write must
 * reload B's keyring and stay readable by a store opened afresh. `open` gives a new, locked
 * store on the same database each call (with a small seal limit, e.g. 1024).
 */
import assert from 'node:assert/strict';
import { RootKey } from '../../src/crypto/index.js';
import { Reencryptor } from '../../src/store/reencrypt.js';
import type { SealedStore } from '../../src/store/sealed.js';

export async function sealFenceAfterSealLimit(open: () => Promise<SealedStore>): Promise<void> {
  const root = RootKey.generate();
  const keep = setInterval(() => undefined, 1000); // the keyring reload waits on an unref'd timer
  const stores: SealedStore[] = [];
  const unlocked = async (): Promise<SealedStore> => {
    const s = await open();
    stores.push(s);
    await s.unlock(root);
    return s;
  };
  try {
    const a = await unlocked();
    const b = await unlocked();
    await b.putSecret('b/first', { k: '1' }); // B holds a block of generation 1
    for (let i = 0; a.custody().keyring.storage.current === 1; i++) await a.putSecret(`a/${i}`, { k: 'x' });
    const re = new Reencryptor(() => a.custody(), { ratePerSecond: 100_000 });
    re.kick();
    await re.idle();
    assert.deepEqual(a.custody().keyring.storage.ids(), [2]);
    assert.equal(b.custody().keyring.storage.current, 1, 'B has not seen the new generation yet');
    await b.putSecret('b/acked', { k: 'precious' });
    assert.equal(b.custody().keyring.storage.current, 2, 'B reloaded its keyring before sealing');
    assert.equal((await a.getSecret('b/acked'))?.values['k'], 'precious');
    const c = await unlocked();
    assert.equal((await c.getSecret('b/acked'))?.values['k'], 'precious');
    assert.equal((await c.getSecret('b/first'))?.values['k'], '1');
  } finally {
    clearInterval(keep);
    for (const s of stores) await s.close();
    root.destroy();
  }
}
