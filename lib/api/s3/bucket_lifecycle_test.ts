import assert from "node:assert/strict";
import { parseLifecycleConfiguration } from "./bucket_lifecycle.ts";
import { readXmlBody } from "./xml.ts";

const parse = async (rules: string) =>
  parseLifecycleConfiguration(
    await readXmlBody(
      new Response(`<LifecycleConfiguration>${rules}</LifecycleConfiguration>`).body,
    ),
  );

Deno.test("an enabled rule with tag or size filters is stored so that older nodes skip it", async () => {
  const [tagged, sized, plain, disabled] = await parse(
    "<Rule><ID>t</ID><Status>Enabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>1</Days></Expiration></Rule>" +
      "<Rule><ID>s</ID><Status>Enabled</Status><Filter><ObjectSizeLessThan>9</ObjectSizeLessThan></Filter><Expiration><Days>1</Days></Expiration></Rule>" +
      "<Rule><ID>p</ID><Status>Enabled</Status><Filter><Prefix>a/</Prefix></Filter><Expiration><Days>1</Days></Expiration></Rule>" +
      "<Rule><ID>d</ID><Status>Disabled</Status><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Expiration><Days>1</Days></Expiration></Rule>",
  );
  // A node from before the filters reads `enabled` only, and would apply the rule to every key.
  assert.deepEqual([tagged.enabled, tagged.filteredEnabled], [false, true]);
  assert.deepEqual([sized.enabled, sized.filteredEnabled], [false, true]);
  assert.deepEqual([plain.enabled, plain.filteredEnabled], [true, undefined]);
  assert.deepEqual([disabled.enabled, disabled.filteredEnabled], [false, undefined]);
});
