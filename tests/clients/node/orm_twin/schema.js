'use strict';
// Create the suite's schema on one empty database, as the applications
// would: Sequelize's sync() and TypeORM's synchronize.
// Usage: node schema.js <postgresql:// URL> (superuser).
const { Sequelize } = require('sequelize');
const sequelizeModels = require('./sequelize_models');
const typeormModels = require('./typeorm_models');

async function main(url) {
  const sequelize = new Sequelize(url, { logging: false });
  sequelizeModels.define(sequelize);
  await sequelize.sync();
  await sequelize.close();
  const ds = typeormModels.dataSource(url, { synchronize: true });
  await ds.initialize();
  await ds.destroy();
}

main(process.argv[2]).catch((e) => {
  console.error(e);
  process.exit(1);
});
