import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { requestAPI } from '../handler';
import { ICellopsSidebar } from '../tokens';
import { IRolesReply, TeamModel, TeamTab, wantsTeamTab } from './tab';

/** The Team tab, added when the workspace is a team's (PostgreSQL) or has roles granted:
 * asked once when JupyterLab starts (a workspace that becomes one shows it after a reload). */
export const teamPlugin: JupyterFrontEndPlugin<void> = {
  id: 'cellops:team',
  description: 'cellops Team: where a shared workspace keeps its data, and who holds which role.',
  autoStart: true,
  requires: [ICellopsSidebar],
  activate: (app: JupyterFrontEnd, sidebar: ICellopsSidebar) => {
    void requestAPI<IRolesReply>('roles').then(reply => {
      if (wantsTeamTab(reply)) {
        sidebar.addTab(new TeamTab(new TeamModel(reply)));
      }
    }, () => undefined); // no workspace yet, or an older server: no tab
  }
};
