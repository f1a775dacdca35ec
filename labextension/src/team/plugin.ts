import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { requestAPI } from '../handler';
import { Poller } from '../poller';
import { ICellopsSidebar } from '../tokens';
import { IRolesReply, TeamModel, TeamTab, wantsTeamTab } from './tab';

/** How soon the plugin asks again whether the Team tab belongs, then less often while nothing
 * changes, up to WATCH_MAX_MS (not while the page is hidden). */
const WATCH_MS = 5000;
const WATCH_MAX_MS = 15000;

/** The Team tab, added when the workspace is a team's (PostgreSQL) or has roles granted.
 * Asked when JupyterLab starts and again, backing off, until it belongs: a workspace that
 * becomes a team's (`cellops init --store postgresql://...`, a first `cellops roles grant`)
 * shows the tab within 15 seconds, without a reload. Once shown it stays. */
export const teamPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:team',
  description: 'cellops Team: where a shared workspace keeps its data, and who holds which role.',
  autoStart: true,
  requires: [ICellopsSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar) => {
    let reply: IRolesReply | null = null;
    const watch: Poller = new Poller(
      async () => {
        reply = await requestAPI<IRolesReply>('roles');
        return JSON.stringify(reply);
      },
      () => {
        // An error (no workspace yet, an older server) leaves the tab out and keeps asking.
        if (watch.error === null && reply !== null && wantsTeamTab(reply)) {
          watch.dispose();
          sidebar.addTab(new TeamTab(new TeamModel(reply)));
        }
      },
      WATCH_MS,
      WATCH_MAX_MS
    );
    watch.setActive(true);
  }
};
